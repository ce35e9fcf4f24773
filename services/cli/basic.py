"""`tiercel version` and `tiercel config keys|check`: commands that need no running system."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tiercel.api.cli import CaOpt, CertOpt, GrpcOpt, InsecureOpt, KeyOpt
from tiercel.cli.common import ConfigOpt, OverrideOpt, load_config


def version(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
            grpc_addr: GrpcOpt = None, cert: CertOpt = None, key: KeyOpt = None, ca: CaOpt = None,
            insecure: InsecureOpt = False) -> None:
    """Print Tiercel's version and the Falco engine version it implements (of a running API with --grpc)."""
    from tiercel import ENGINE_VERSION, __version__

    if grpc_addr:
        from tiercel.api.cli import GrpcTarget, remote_version

        v = remote_version(GrpcTarget(grpc_addr, cert, key, ca, insecure))
        if json_out:
            print(json.dumps(v))
        else:
            print(f"Tiercel version: {v['version']} ({grpc_addr})")
            print(f"Falco engine version: {v['engine_version']}")
            print(f"Fields checksum: {v['engine_fields_checksum']}")
        return

    engine = ".".join(map(str, ENGINE_VERSION))
    if json_out:
        print(json.dumps({"version": __version__, "engine_version": engine}))
    else:
        print(f"Tiercel version: {__version__}")
        print(f"Falco engine version: {engine}")


config_app = typer.Typer(help="Configuration: list keys, check a file, and (running system) get/set.",
                         no_args_is_help=True)


@config_app.command("keys")
def config_keys() -> None:
    """List every configuration key with its type, default and whether it changes live."""
    from tiercel.common.config import SCHEMA

    for k in SCHEMA:
        live = "live" if k.live else "    "
        print(f"{k.name:40} {live} default={json.dumps(k.default)}  {k.describe_allowed()}. {k.doc}")


@config_app.command("check")
def config_check(config: ConfigOpt = None, option: OverrideOpt = None) -> None:
    """Validate the configuration (file, environment, -o) and print the effective values."""
    cfg = load_config(config, option)
    for k, v in cfg.items():
        print(f"{k}: {json.dumps(v)}")


def register(app: typer.Typer) -> None:
    app.command("version")(version)
    app.add_typer(config_app, name="config")
