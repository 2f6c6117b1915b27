"""`python -m remora_cli` runs the `remora` command."""

from .main import cli

if __name__ == "__main__":
    cli()
