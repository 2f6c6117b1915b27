"""The append-only, hash-chained record of what happened. Imports nothing of ours."""
