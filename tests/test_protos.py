"""Proto contracts: the generated code is current, and Falco's wire numbers are unchanged."""

from __future__ import annotations

import filecmp
import importlib.util

import pytest

from tests.conftest import ROOT
from tiercel.pb.falco import outputs_pb2, schema_pb2, version_pb2


def test_generated_code_is_current(tmp_path):
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is not installed (test extra)")
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "tools" / "gen_protos.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    fresh = tmp_path / "falco"
    committed = ROOT / "services" / "pb" / "falco"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in committed.iterdir() if p.name != "__pycache__")
    stale = [n for n in names if not filecmp.cmp(fresh / n, committed / n, shallow=False)]
    assert not stale, f"services/pb is stale, run `make protos`: {stale}"


def _fields(msg) -> dict[str, int]:
    return {f.name: f.number for f in msg.DESCRIPTOR.fields}


def test_falco_outputs_wire_numbers():
    assert outputs_pb2.DESCRIPTOR.package == "falco.outputs"
    svc = outputs_pb2.DESCRIPTOR.services_by_name["service"]
    sub, get = svc.methods_by_name["sub"], svc.methods_by_name["get"]
    assert sub.full_name == "falco.outputs.service.sub" and sub.client_streaming and sub.server_streaming
    assert get.full_name == "falco.outputs.service.get" and not get.client_streaming and get.server_streaming
    f = _fields(outputs_pb2.response)
    falco = {"time": 1, "priority": 2, "source_deprecated": 3, "rule": 4, "output": 5, "output_fields": 6,
             "hostname": 7, "tags": 8, "source": 9}
    assert {k: f[k] for k in falco} == falco
    assert min(v for k, v in f.items() if k not in falco) > 9


def test_falco_version_wire_numbers():
    f = _fields(version_pb2.response)
    assert f == {"version": 1, "major": 2, "minor": 3, "patch": 4, "prerelease": 5, "build": 6,
                 "engine_minor": 7, "engine_fields_checksum": 8, "engine_major": 9, "engine_patch": 10,
                 "engine_version": 11}
    assert version_pb2.DESCRIPTOR.services_by_name["service"].methods_by_name["version"].full_name == \
        "falco.version.service.version"


def test_schema_enums_and_aliases():
    pr = schema_pb2.priority
    assert [pr.Value(n) for n in ("EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE",
                                  "INFORMATIONAL", "DEBUG")] == list(range(8))
    assert pr.Value("informational") == pr.Value("Informational") == 6
    src = schema_pb2.source
    assert src.Value("SYSCALL") == 0 and src.Value("K8S_AUDIT") == src.Value("k8s_audit") == 1
    assert src.Value("K8s_audit") == src.Value("K8S_audit") == 1
    assert src.Value("INTERNAL") == 2 and src.Value("PLUGIN") == 3


def test_old_clients_empty_request_still_parses():
    """Falco 0.43's request was empty: zero bytes must decode to 'no filters'."""
    r = outputs_pb2.request.FromString(b"")
    assert not r.HasField("min_priority") and not r.tags and not r.condition
