"""Who may do what where: zones, roles, grants and the one policy. Imports audit only."""
