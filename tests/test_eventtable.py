"""The event table: the committed data matches the reference, and the lookups answer as libs does."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import ROOT
from tiercel.common import eventtable as et


def _gen():
    spec = importlib.util.spec_from_file_location("gen_event_table", ROOT / "tools" / "gen_event_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_table_is_fresh(reference_dir):
    gen = _gen()
    committed = (ROOT / "services" / "common" / "eventtable.json").read_text()
    assert committed == gen.generate(reference_dir / "scap-event-table.json"), \
        "services/common/eventtable.json is stale: run tools/gen_event_table.py"


def test_table_matches_reference_facts(reference_dir):
    ref = json.loads((reference_dir / "scap-event-table.json").read_text())
    assert len(et.EVENTS) == ref["event_max"]
    for e in ref["events"]:
        mine = et.info(e["code"])
        assert mine.name == e["name"] and mine.enum == e["enum"]
        assert [p.name for p in mine.params] == [p["name"] for p in e["params"]]
        assert [p.type for p in mine.params] == [p["type"] for p in e["params"]]
        assert mine.large_payload == e["large_payload"]


def test_lookups():
    assert et.info(3).name == "open" and et.info(3).dir == "<" and et.info(2).dir == ">"
    assert et.info(3).params[2].table == "file_flags"
    assert et.info(10_000) is None and et.info(-1) is None
    assert {2, 3} <= et.codes("open")
    assert {12, 13, 230, 231, 292, 293} <= et.codes("execve")
    # a syscall recorded through generic events matches the generic codes too
    assert {0, 1} <= et.codes("madvise")
    assert et.codes("procexit") == {et.PPME_PROCEXIT_E, et.PPME_PROCEXIT_1_E}
    assert et.codes("no_such_event") == frozenset()
    names = et.event_type_names()
    assert {"open", "execve", "pluginevent", "asyncevent", "container", "madvise"} <= names
    assert "NA" not in names
    assert et.PPME_PLUGINEVENT_E == 322 and et.PPME_ASYNCEVENT_E == 402 and et.PPME_PROCINFO_E == 234
    assert et.info(322).large_payload and not et.info(3).large_payload
    assert et.syscall_name(75) == "mprotect" and et.syscall_name(0) == "<unknown>"
    assert et.errno_name(2) == "ENOENT" and et.signal_name(9) == "SIGKILL"
    assert dict(et.flags_table("file_flags"))["O_CLOEXEC"] == 4096
    assert et.info(4).category_name == "io-other"
