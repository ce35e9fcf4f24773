"""The `tiercel` command: one typer app; each service contributes its commands from its own cli module."""
