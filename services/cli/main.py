"""Entry point of the `tiercel` command. Service commands live with their service (`<service>/cli.py`)."""

from __future__ import annotations

import importlib
import sys

import typer

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

# Commands served by a few modules: `tiercel replay ...` and `tiercel rules ...` load only those
# (start-up is most of a conformance case's time).
FAST_PATHS = {
    "replay": ("tiercel.rules.cli",),
    "rules": ("tiercel.rules.cli", "tiercel.rules.cli_service"),
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The `tiercel` command; with `argv`, only the modules its first word needs when known."""
    app = typer.Typer(
        name="tiercel",
        help="Falco's rules language and gRPC API as microservices over NATS.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    modules = FAST_PATHS.get(argv[1]) if argv and len(argv) > 1 else None
    for name in modules or COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every command, built on first use (`from tiercel.cli.main import app`)
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(name)


def main() -> None:
    # Text from events keeps the bytes that are not UTF-8 (file names, command lines) as lone
    # surrogates; write them back as those bytes, as Falco and sysdig print them, never fail on them.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    try:
        build_app(sys.argv)()
    except KeyboardInterrupt:
        sys.exit(130)
