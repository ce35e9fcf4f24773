"""Entry point of the `tiercel` command. Service commands live with their service (`<service>/cli.py`)."""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="tiercel",
    help="Falco's rules language and gRPC API as microservices over NATS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Each module exposes register(app). Keep imports at module level of those files light: the CLI
# starts for every conformance case.
COMMAND_MODULES = (
    "tiercel.cli.basic",
    "tiercel.cli.bench",
    "tiercel.cli.up",
    "tiercel.rules.cli",
    "tiercel.rules.cli_service",
    "tiercel.cli.status",
    "tiercel.cli.alerts",
    "tiercel.api.cli",
    "tiercel.ingest.cli_live",
    "tiercel.ingest.cli",
    "tiercel.rules.condition.cli",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
