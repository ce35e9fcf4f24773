"""What every command shares: options for configuration, and turning problems into one clear line."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from tiercel.common.config import Config, ConfigError, load
from tiercel.common.log import redact

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="YAML configuration file.",
                                               envvar="TIERCEL_CONFIG")]
OverrideOpt = Annotated[list[str] | None, typer.Option("--option", "-o", help="Override a config key: key=value.")]
NatsUrlOpt = Annotated[str | None, typer.Option("--nats-url", help="NATS server URL (default: embedded).",
                                                envvar="TIERCEL_NATS_URL")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit; never a traceback."""
    print(redact(f"tiercel: error: {message}"), file=sys.stderr)
    raise typer.Exit(code)


def load_config(config: str | None, overrides: list[str] | None, nats_url: str | None = None) -> Config:
    # --nats-url (or TIERCEL_NATS_URL, which typer folds into it) first: `-o nats.url=` wins over both
    extra = ([f"nats.url={nats_url}"] if nats_url else []) + list(overrides or [])
    try:
        cfg = load(config, extra)
    except ConfigError as e:
        fail(str(e))
    for w in cfg.warnings:
        print(f"tiercel: warning: {w}", file=sys.stderr)
    return cfg
