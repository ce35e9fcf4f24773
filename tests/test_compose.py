"""compose.yaml against the code: no Docker engine runs here, so check what can be checked.

Every command compose runs exists in the CLI, every TIERCEL_* variable it sets is read by the
config loader and holds a valid value, every dependency is a defined service, and the rules
service can be scaled (no fixed container name or host port).
"""

from __future__ import annotations

import typer.main
import yaml

from tests.conftest import ROOT
from tiercel.cli.main import app
from tiercel.common.config import SCHEMA, ConfigError, load

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
ENV_KEYS = {k.env: k for k in SCHEMA} | {"TIERCEL_CONFIG": None}


def _resolve(argv: list[str]):
    """The CLI command object compose's argv runs (typer's click-compatible command tree)."""
    assert argv[0] == "tiercel", argv
    cmd = typer.main.get_command(app)
    for word in argv[1:]:
        if word.startswith("-"):
            break
        assert hasattr(cmd, "commands"), f"{' '.join(argv)}: {cmd.name} has no subcommands"
        sub = cmd.commands.get(word)
        assert sub is not None, f"compose runs `{' '.join(argv)}` but the CLI has no command {word!r}"
        cmd = sub
    return cmd


def test_every_command_exists():
    built = [s for s in COMPOSE["services"].values() if "build" in s]
    assert built
    for svc in built:
        cmd = _resolve(svc["command"])
        assert not hasattr(cmd, "commands"), f"{svc['command']} names a group, not a command"


def test_every_env_var_is_a_valid_config_key():
    for name, svc in COMPOSE["services"].items():
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        for var in env:
            if var.startswith("TIERCEL_"):
                assert var in ENV_KEYS, f"service {name} sets {var}, which no config key reads"
        try:
            load(None, environ={k: v for k, v in env.items() if k.startswith("TIERCEL_")})
        except ConfigError as e:
            raise AssertionError(f"service {name}: {e}") from None


def test_dependencies_are_defined_and_rules_scales():
    services = COMPOSE["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on") or []:
            assert dep in services, f"{name} depends on undefined service {dep}"
    rules = services["rules"]
    assert "container_name" not in rules and "ports" not in rules, "rules must scale (--scale rules=N)"
    assert services["ingest"].get("pid") == "host"
    for vol in (v.split(":")[0] for s in services.values() for v in s.get("volumes") or []):
        assert vol.startswith((".", "/")) or vol in (COMPOSE.get("volumes") or {}), f"undefined volume {vol}"
