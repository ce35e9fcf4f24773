"""The compiler hints of the syscall fields (inline templates, per-code values, parsed arguments)
agree with the extractors on every event of the corpus, and a compiled condition uses them."""

from __future__ import annotations

import pytest

from tiercel.ingest.scap.reader import read_scap
from tiercel.ingest.state import StateEngine
from tiercel.rules.fields import catalog as C


@pytest.fixture(scope="module")
def events(request):
    from tests.conftest import CONFORMANCE

    if not CONFORMANCE.is_dir():
        pytest.skip("../shared/conformance is not beside this checkout")
    out = []
    for name in ("cat_write.scap", "libs/curl_google.scap", "libs/test_ipv6_client.scap"):
        out.extend(StateEngine().run(read_scap(CONFORMANCE / "traces" / name)))
    return out


def test_inline_templates_equal_extractors(events):
    hinted = [f for f in C.fields("syscall").values() if f.inline]
    assert len(hinted) >= 20
    for f in hinted:
        code = compile(f.inline.format(evt="e", arg="None"), f.name, "eval")
        g = dict(f.inline_globals or {})
        for e in events:
            assert eval(code, g, {"e": e}) == f.extract(e, None), (f.name, e.num)  # noqa: S307


def test_per_code_values_equal_extractors(events):
    hinted = [f for f in C.fields("syscall").values() if f.per_code]
    assert len(hinted) >= 6
    for f in hinted:
        for e in events:
            v = f.per_code(e.code)
            if v is not C.VARIES:
                assert v == f.extract(e, None), (f.name, e.num)


def test_parsed_arguments():
    f = C.lookup("proc.aname", "syscall")
    assert f.parse_arg("3") == 3
    with pytest.raises(ValueError):
        f.parse_arg("x")
    assert C.lookup("evt.arg", "syscall").parse_arg("1") == 1
    assert C.lookup("evt.arg", "syscall").parse_arg("flags") == "flags"


def test_compiled_condition_matches_interpreted_fields(events):
    from tiercel.rules import condition as cond

    text = ("evt.type in (open, openat) and proc.name = cat and fd.name startswith /etc "
            "and proc.aname[2] = emacs and evt.is_io = false and container.id = host")
    tree = cond.parse(text)
    ev = cond.build_evaluator("syscall", [(0, cond.check(tree, "syscall"), None)])
    got = [e.num for e in events if ev(e)]
    f = {n: C.lookup(n, "syscall") for n in ("proc.name", "fd.name", "container.id")}
    want = [e.num for e in events if e.code in (2, 3) and f["proc.name"].extract(e, None) == "cat"
            and (f["fd.name"].extract(e, None) or "").startswith("/etc")
            and C.lookup("proc.aname", "syscall").extract(e, 2) == "emacs"]
    assert got == want and got
    assert "thread.comm" in ev.source_code  # the inline template, not a call
