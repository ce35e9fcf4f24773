"""Differential tests: Tiercel's compiled conditions against sysdig's filter engine on the
conformance captures. Both must select exactly the same events (by evt.num).

sysdig (Debian package, libsinsp of its own era) is the oracle for operators, missing values and
field semantics on real captures. The corpus sticks to syntax sysdig knows (no modifiers,
transformers or val()). The stable ruleset's macros that compile standalone run in the slow suite.
Skips when sysdig, the captures or the capture reader are missing.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import CONFORMANCE
from tiercel.rules import condition as C

pytestmark = pytest.mark.sysdig

SYSDIG = shutil.which("sysdig")
TRACES = CONFORMANCE / "traces"
CAPTURES = sorted([*TRACES.glob("*.scap"), *TRACES.glob("libs/*.scap")], key=lambda p: p.name)

CORPUS = [
    "evt.type = open",
    "evt.type in (open, openat) and proc.name = cat",
    "evt.type != close and evt.dir = <",
    "not evt.type in (read, write, close)",
    "evt.type = execve and evt.dir = <",
    "proc.name startswith c",
    "proc.name contains at or proc.name endswith sh",
    "proc.name = cat and not fd.name startswith /lib",
    "fd.name startswith /etc",
    "fd.name glob '/etc/*'",
    "fd.name glob '*.so*'",
    "fd.name pmatch (/etc, /lib)",
    "fd.name pmatch (/usr/lib/x86_64-linux-gnu)",
    "fd.typechar = f and fd.num >= 0",
    "fd.num < 3",
    "fd.num != 3",
    "evt.res != SUCCESS",
    "evt.res = SUCCESS",
    "evt.rawres < 0",
    "evt.rawres in (0, 1, 2)",
    "proc.pname exists",
    "not proc.pname exists",
    "proc.pname = bash",
    "proc.pname != bash",
    "not proc.pname = bash",
    "proc.aname = bash",
    "proc.aname != bash",
    "proc.aname[1] = bash",
    "proc.aname[2] exists",
    "user.name = root",
    "user.uid = 0",
    "user.uid != 0",
    "fd.l4proto = tcp",
    "fd.sport = 80 or fd.sport = 443",
    "fd.sport in (80, 443, 53)",
    "fd.rport > 1024",
    "fd.net = 10.0.0.0/8",
    "fd.ip = 2001:4860:4860::8888",
    "fd.sip = 2607:f8b0:4004:802::2004",
    "fd.snet != 127.0.0.0/8",
    "fd.sip exists",
    "fd.type = ipv4 or fd.type = ipv6",
    "evt.arg.flags contains O_RDONLY",
    "evt.is_open_read = true",
    "evt.is_open_write = true",
    "proc.cmdline icontains CAT",
    "proc.exe endswith cat",
    "fd.directory = /etc",
    "fd.filename in (passwd, hosts, ld.so.cache)",
    "(evt.type = open or evt.type = close) and not fd.name = /dev/null",
    "evt.num > 100 and evt.num <= 200",
    "evt.category = file",
    "proc.name in (cat, curl, bash, sh) and evt.type in (open, openat, connect, execve)",
    "fd.name contains google or fd.sip.name = localhost",
    "evt.buffer contains GET",
    "thread.tid = 0 or proc.pid > 1",
    "proc.args contains -",
    "proc.cwd startswith /",
    "container.id = host",
    "proc.tty != 0",
]


@functools.cache
def _tiercel_all(path: str, conds: tuple[str, ...]) -> dict[str, list[int]]:
    """The evt.num of the events each condition selects, evaluated while the capture streams (the
    state engine updates threads and fds in place, as libsinsp does)."""
    reader = _reader()
    evs = [C.build_evaluator("syscall", [("c", C.parse(c), None)]) for c in conds]
    out: dict[str, list[int]] = {c: [] for c in conds}
    for e in reader.read_capture(path):
        for c, ev in zip(conds, evs, strict=True):
            if ev(e):
                out[c].append(e.num)
    for ev in evs:
        assert ev.errors == 0, ev.last_error
    return out


def _sysdig(path: str, cond: str) -> subprocess.CompletedProcess:
    return subprocess.run([SYSDIG, "-r", path, "-p%evt.num", cond], capture_output=True, text=True, timeout=60)


def _compare(path, corpus: tuple[str, ...], must_accept: bool) -> int:
    """Compare every condition of the corpus on one capture; returns how many sysdig accepted."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # sysdig runs are mostly process start-up
        runs = list(pool.map(lambda c: _sysdig(str(path), c), corpus))
    ours = _tiercel_all(str(path), corpus)
    compared = 0
    for cond, p in zip(corpus, runs, strict=True):
        if p.returncode != 0:
            assert not must_accept, f"sysdig rejected {cond!r}: {p.stderr.strip()}"
            continue
        expected = [int(x) for x in p.stdout.split()]
        got = ours[cond]
        assert got == expected, (f"{path.name}: {cond!r}: only sysdig {sorted(set(expected) - set(got))[:20]}, "
                                 f"only tiercel {sorted(set(got) - set(expected))[:20]}")
        compared += 1
    return compared


def _reader():
    """The capture reader (tiercel.ingest.capfile; older name tiercel.ingest.capture)."""
    import importlib

    for name in ("tiercel.ingest.capfile", "tiercel.ingest.capture"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("the capture reader is not there yet")


def _skip_unless_ready():
    if SYSDIG is None:
        pytest.skip("sysdig is not installed")
    if not CAPTURES:
        pytest.skip("../shared/conformance/traces is not beside this checkout")
    _reader()
    try:
        C.check(C.parse("proc.name = x and fd.name = y and evt.type = open"), "syscall")
    except C.CompileError:
        pytest.skip("the syscall fields are not registered yet")


def test_corpus_matches_sysdig():
    """A core of the corpus on every capture (the rest runs in the slow suite)."""
    _skip_unless_ready()
    for capture in CAPTURES:
        _compare(capture, tuple(CORPUS[::3]), must_accept=True)


@pytest.mark.slow
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_whole_corpus_matches_sysdig(capture):
    _skip_unless_ready()
    _compare(capture, tuple(CORPUS), must_accept=True)


def _stable_macros() -> list[str]:
    """Every macro of the stable ruleset, lists substituted and macros expanded, as text."""
    import yaml

    path = CONFORMANCE / "rules" / "upstream" / "falco_rules.yaml"
    items = [i for i in yaml.load(path.read_text(), Loader=yaml.BaseLoader) if isinstance(i, dict)]
    lists: dict[str, list[str]] = {}
    for i in items:
        if "list" in i:
            lists[i["list"]] = [x for it in (i.get("items") or []) for x in (lists.get(it, [it]))]
    macros: dict[str, C.Node] = {}
    out = []
    for i in items:
        if "macro" not in i:
            continue
        text, _ = C.substitute_lists(i["condition"], list(lists.items()))
        macros[i["macro"]] = tree = C.parse(text)
        try:
            tree, _ = C.expand_macros(tree, macros.get)
            C.check(tree, "syscall")
        except C.ConditionError:
            continue
        out.append(C.to_source(tree))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_stable_macros_match_sysdig(capture):
    _skip_unless_ready()
    macros = tuple(_stable_macros())
    compared = _compare(capture, macros, must_accept=False)
    assert compared >= len(macros) // 2, f"sysdig accepted only {compared} of {len(macros)} macros"
