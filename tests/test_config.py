"""Configuration: validated at start, one clear error naming the key and what is allowed."""

from __future__ import annotations

import pytest

from tests.conftest import tiercel
from tiercel.common.config import SCHEMA, ConfigError, load


def test_defaults_validate():
    cfg = load(None, environ={})
    assert cfg["priority"] == "debug"
    assert cfg["grpc.bind_address"] == "unix:///run/tiercel/tiercel.sock"
    for k in SCHEMA:
        assert k.coerce(k.default) == k.default, k.name


def test_file_env_and_overrides_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("priority: warning\noutputs:\n  rate: 2\n  max_burst: 10\njson_output: true\n")
    cfg = load(f, ["priority=error"], environ={"TIERCEL_OUTPUTS_RATE": "5", "TIERCEL_JSON_OUTPUT": "false"})
    assert cfg["priority"] == "error"
    assert cfg["outputs.rate"] == 5.0
    assert cfg["outputs.max_burst"] == 10
    assert cfg["json_output"] is False


@pytest.mark.parametrize("text, needle", [
    ("priority: loud\n", "config key 'priority': invalid value 'loud'; expected one of emergency"),
    ("prority: warning\n", "unknown config key 'prority'; did you mean 'priority'?"),
    ("syscall_event_drops:\n  threshold: 3\n", "between 0 and 1"),
    ("syscall_event_drops:\n  actions: [ignore, log]\n", "'ignore' cannot be combined"),
    ("- a\n- b\n", "must hold a YAML mapping"),
    ("a: [\n", "is not valid YAML at line"),
    ("grpc:\n  bind_address: nowhere\n", "expected unix:///path or host:port"),
    ("nats:\n  url: http://x:4222\n", "invalid NATS URL"),
])
def test_bad_config_gives_one_clear_line(tmp_path, text, needle):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(f, environ={})
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_falco_yaml_keys_are_ignored_with_a_warning(tmp_path):
    f = tmp_path / "falco.yaml"
    f.write_text("stdout_output:\n  enabled: true\npriority: notice\n")
    cfg = load(f, environ={})
    assert cfg["priority"] == "notice"
    assert any("stdout_output" in w for w in cfg.warnings)


def test_cli_reports_bad_config_without_traceback(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("outputs:\n  rate: fast\n")
    p = tiercel("config", "check", "-c", str(f))
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "tiercel: error: config key 'outputs.rate': invalid value 'fast'; expected a number >= 0"]
    p = tiercel("config", "check", "-o", "nope=1")
    assert p.returncode == 1 and "unknown config key 'nope'" in p.stderr and "Traceback" not in p.stderr
