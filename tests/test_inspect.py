"""`tiercel inspect`: the user's view of what the rules see, on every kind of capture."""

from __future__ import annotations

import json

from tests.conftest import tiercel


def test_json_count_and_filters(conformance_dir):
    trace = str(conformance_dir / "traces" / "cat_write.scap")
    p = tiercel("inspect", trace, "evt.type=open and evt.dir=<", "--json", "-n", "2", check=True)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["evt.type"] == "open" and rows[0]["proc.name"] == "cat"
    p = tiercel("inspect", trace, "fd.name=/dev/null", "-p", "%proc.name %fd.name", "--json", check=True)
    assert json.loads(p.stdout.splitlines()[0]) == {"fd.name": "/dev/null", "proc.name": "cat"}
    all_events = tiercel("inspect", trace, "-A", "-p", "%evt.num", check=True).stdout.split()
    shown = tiercel("inspect", trace, "-p", "%evt.num", check=True).stdout.split()
    assert len(all_events) == 345 and len(shown) == 85


def test_k8s_audit_and_errors(conformance_dir, tmp_path):
    trace = str(conformance_dir / "traces" / "k8s_audit" / "create_nginx_pod_privileged.json")
    p = tiercel("inspect", trace, "ka.verb=create", "-p", "%ka.verb %ka.target.resource", check=True)
    assert p.stdout.strip() == "create pods"
    p = tiercel("inspect", str(tmp_path / "missing.scap"))
    assert p.returncode == 1 and "cannot open" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad.scap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)
    p = tiercel("inspect", str(bad))
    assert p.returncode == 1 and "corrupt block" in p.stderr
    p = tiercel("inspect", str(conformance_dir / "traces" / "cat_write.scap"), "proc.name = = x")
    assert p.returncode == 1 and "bad filter" in p.stderr


def test_tcap_written_by_us_inspects_like_the_scap(conformance_dir, tmp_path):
    from tiercel.ingest.scap.reader import read_scap
    from tiercel.ingest.state import StateEngine
    from tiercel.ingest.tcap import TcapWriter

    src = conformance_dir / "traces" / "libs/test_ipv6_client.scap"
    out = tmp_path / "x.tcap"
    with open(out, "wb") as f:
        w = TcapWriter(f)
        for ev in StateEngine().run(read_scap(src)):
            w.write_event(ev)
        w.close()
    fmt = "*%evt.num %proc.name %fd.name %fd.sip %evt.args"
    a = tiercel("inspect", str(src), "-p", fmt, check=True).stdout
    b = tiercel("inspect", str(out), "-p", fmt, check=True).stdout
    assert a == b and a
