"""Fuzz targets shared by the hypothesis fuzz tests (tests/test_fuzz.py) and the optional
coverage-guided runner (tools/fuzz_atheris.py).

A target takes one input and feeds it to the real parser the way a service does. It may succeed, or
reject the input with one of its declared, typed errors (`Target.allowed`); anything else escaping
it (TypeError, KeyError, IndexError, RecursionError, ...) is a crash, and an input that runs longer
than the per-input time limit is a hang. Inputs are bytes for the atheris runner (`from_bytes`) and
structured values for hypothesis (`strategy`: grammar-shaped inputs and mutations of valid seeds).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------
# Per-input time limit
# ---------------------------------------------------------------------------------------------

INPUT_TIMEOUT_S = 10.0  # generous: the machine is shared; real parsers take milliseconds


class Hang(Exception):
    """An input ran past the per-input time limit."""


@contextlib.contextmanager
def time_limit(seconds: float = INPUT_TIMEOUT_S) -> Iterator[None]:
    """Raise Hang in the main thread once `seconds` pass (SIGALRM; Python-level loops only)."""

    def _alarm(signum: int, frame: Any) -> None:
        raise Hang(f"input took longer than {seconds:g}s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------------------------
# Byte mutations of valid seeds
# ---------------------------------------------------------------------------------------------

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff",
                b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", b"\xff" * 8, b"\x01\x00\x00\x00"]


def mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, length, payload) edits: flip, overwrite, delete, insert, duplicate,
    truncate. Positions wrap around the current length."""
    b = bytearray(data)
    for kind, pos, ln, payload in ops:
        n = len(b)
        p = pos % (n + 1)
        if kind == 0 and n:  # flip a bit
            p %= n
            b[p] ^= 1 << (ln % 8)
        elif kind == 1:  # overwrite with an interesting value or the payload
            v = _INTERESTING[ln % len(_INTERESTING)] if ln % 3 else payload
            b[p:p + len(v)] = v
        elif kind == 2:  # delete a range
            del b[p:p + 1 + ln % 64]
        elif kind == 3:  # insert bytes
            b[p:p] = payload
        elif kind == 4 and n:  # duplicate a range
            b[p:p] = b[p:p + 1 + ln % 256]
        elif kind == 5:  # truncate
            del b[p:]
    return bytes(b)


_ops = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 20), st.integers(0, 255),
                          st.binary(min_size=1, max_size=16)), min_size=1, max_size=6)


def mutations(seeds: Callable[[], list[bytes]]) -> st.SearchStrategy[bytes]:
    """A seed with a few mutations applied (seeds computed once, lazily)."""
    return st.deferred(lambda: st.builds(mutate, st.sampled_from(seeds()), _ops))


def text_mutations(seeds: Callable[[], list[str]]) -> st.SearchStrategy[str]:
    return mutations(lambda: [s.encode() for s in seeds()]).map(lambda b: b.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    run: Callable[[Any], None]  # feeds one input; raises only `allowed` on bad input
    allowed: tuple[type[BaseException], ...]
    strategy: Callable[[], st.SearchStrategy[Any]]
    from_bytes: Callable[[bytes], Any] = lambda b: b
    seeds: Callable[[], list[bytes]] = list  # valid inputs as bytes, for atheris' corpus
    doc: str = ""
    stats: dict[str, int] = field(default_factory=dict)


TARGETS: dict[str, Target] = {}


def target(name: str, allowed: tuple[type[BaseException], ...], strategy: Callable[[], st.SearchStrategy[Any]],
           **kw: Any) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def deco(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        TARGETS[name] = Target(name, fn, allowed, strategy, doc=(fn.__doc__ or "").strip(), **kw)
        return fn

    return deco


def warm() -> None:
    """Build what targets share once, outside the per-input time limit."""
    _default_ruleset()
    _pipeline()
    _sample_events()


def _count(name: str, key: str) -> None:
    s = TARGETS[name].stats
    s[key] = s.get(key, 0) + 1


# --- rules files and conditions --------------------------------------------------------------

_PRIOS = ["EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "INFORMATIONAL", "DEBUG",
          "warning", "bogus"]
_FIELDS = ["proc.name", "evt.type", "fd.name", "proc.aname[2]", "proc.cmdline", "fd.sport", "evt.arg.flags",
           "evt.rawarg.res", "user.uid", "container.id", "ka.verb", "ka.target.resource", "ka.user.name",
           "jevt.value[/a]", "json.value[/x/0]", "fd.net", "proc.env[HOME]", "evt.num", "thread.cap_effective",
           "nonexistent.field", "proc.name.x", "fd.name[", "evt.dir"]
_OPS = ["=", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains", "startswith", "bstartswith",
        "endswith", "glob", "iglob", "pmatch", "in", "intersects", "exists", "regex", "==", "=~"]
_VALUES = ["cat", "/etc/shadow", "0", "-1", "18446744073709551616", "0x1f", "1.5", "(a, b)", "(a, (b), c)",
           "()", '"quoted value"', "'single'", "\"unterminated", "10.0.0.0/8", "::1/128", "*", "\\", "a b",
           "(", ")", "", "é", "\x00", "open", "execve", "%proc.name"]
_CONNECT = ["and", "or", "and not", "or not", "not", "(", ")", ","]


@st.composite
def condition_soup(draw: Any) -> str:
    """Token sequences close to the grammar, often not following it."""
    parts = []
    for _ in range(draw(st.integers(1, 12))):
        k = draw(st.integers(0, 9))
        if k < 5:
            parts.append(f"{draw(st.sampled_from(_FIELDS))} {draw(st.sampled_from(_OPS))} "
                         f"{draw(st.sampled_from(_VALUES))}")
        elif k < 8:
            parts.append(draw(st.sampled_from(_CONNECT)))
        elif k == 8:
            parts.append(draw(st.sampled_from(["my_macro", "my_list", "spawned_process", "open_read", "evt.type in (my_list)",
                                               "tolower(proc.name) = cat", "val(proc.pname)", "len(proc.args) > 1"])))
        else:
            parts.append(draw(st.text(max_size=12)))
    return " ".join(parts)


@functools.cache
def _catalog(source: str) -> list[tuple[str, Any]]:
    from tiercel.rules.fields import catalog

    return sorted(catalog.fields(source).items())


_ARGS = {"index": ["0", "1", "2", "-1", "99", "x"], "key": ["HOME", "a.b", "", "x y"],
         "param": ["fd", "name", "res", "flags", "0", "nope"], "pointer": ["/a", "/a/0", "/", "x"], "": ["1", "a"]}
_TYPED_VALUES = {"str": ["cat", "/etc/shadow", "''", '"a b"', "*", "/tmp/*", "openat", "alice", "É", "x\\y"],
                 "num": ["0", "1", "-1", "65535", "4294967296", "0x10", "18446744073709551615", "100"],
                 "ip": ["10.0.0.1", "::1", "10.0.0.0/8", "fe80::/10", "300.1.1.1", "x"],
                 "bool": ["true", "false", "1", "yes"]}


_KIND_OPS = {"str": ["=", "!=", "contains", "icontains", "startswith", "endswith", "glob", "iglob", "in",
                     "intersects", "pmatch", "exists", "regex"],
             "num": ["=", "!=", "<", "<=", ">", ">=", "in", "exists"], "ip": ["=", "!=", "in", "exists"],
             "bool": ["=", "!=", "exists"]}


def _value_kind(ftype: str) -> str:
    if ftype in ("CHARBUF", "FSPATH", "FSRELPATH", "BYTEBUF"):
        return "str"
    if ftype in ("IPADDR", "IPNET", "IPV4ADDR", "IPV6ADDR", "IPV4NET", "IPV6NET"):
        return "ip"
    if ftype == "BOOL":
        return "bool"
    return "num"


@st.composite
def catalog_checks(draw: Any, source: str) -> str:
    """One check over a real field of `source`: its argument, an operator, a value of its type
    most of the time, a transformer at times."""
    name, f = draw(st.sampled_from(_catalog(source)))
    if f.arg != "none" and (f.arg == "required" or draw(st.booleans())):
        name = f"{name}[{draw(st.sampled_from(_ARGS.get(f.arg_kind, ['1'])))}]"
    if draw(st.integers(0, 5)) == 0:
        name = f"{draw(st.sampled_from(['tolower', 'toupper', 'b64', 'basename', 'len']))}({name})"
    typed = draw(st.integers(0, 5)) > 0
    kind = _value_kind(f.type) if typed else draw(st.sampled_from(sorted(_TYPED_VALUES)))
    op = draw(st.sampled_from(_KIND_OPS[kind] if typed else _OPS))
    if op == "exists":
        return f"{name} exists"
    vals = _TYPED_VALUES[kind]
    if op in ("in", "intersects", "pmatch"):
        v = "(" + ", ".join(draw(st.lists(st.sampled_from(vals), max_size=3))) + ")"
    elif draw(st.integers(0, 7)) == 0:
        other, _ = draw(st.sampled_from(_catalog(source)))
        v = f"val({other})" if draw(st.integers(0, 5)) else other
    else:
        v = draw(st.sampled_from(vals))
    return f"{name} {op} {v}"


@st.composite
def catalog_conditions(draw: Any) -> str:
    source = draw(st.sampled_from(["syscall", "syscall", "k8s_audit"]))

    def expr(depth: int) -> str:
        if depth > 2 or draw(st.integers(0, 2)) == 0:
            leaf = draw(catalog_checks(source))
            return f"not {leaf}" if draw(st.integers(0, 4)) == 0 else leaf
        parts = [expr(depth + 1) for _ in range(draw(st.integers(2, 3)))]
        text = "(" + draw(st.sampled_from([" and ", " or "])).join(parts) + ")"
        return f"not {text}" if draw(st.integers(0, 4)) == 0 else text

    return expr(0)


def condition_strategy() -> st.SearchStrategy[str]:
    return st.one_of(catalog_conditions(), catalog_conditions(), condition_soup(), st.text(max_size=80),
                     text_mutations(_condition_seeds))


def _condition_seeds() -> list[str]:
    return ["evt.type = openat and proc.name = cat and fd.name = /etc/shadow",
            "(evt.type in (open, openat) and evt.dir = <) or (proc.aname[2] glob '*sh' and not fd.name startswith /tmp)",
            "ka.verb = create and ka.target.resource in (pods, deployments) and ka.user.name != admin",
            "fd.net = 10.0.0.0/8 and fd.sport > 1024 and tolower(proc.name) contains x",
            "proc.env[HOME] exists and json.value[/a/b] = 1 and evt.num >= 10"]


@target("condition", allowed=(), strategy=condition_strategy, from_bytes=lambda b: b.decode("utf-8", "replace"),
        seeds=lambda: [s.encode() for s in _condition_seeds()])
def fuzz_condition(text: str) -> None:
    """A condition through the loader's steps: parse, expand, check, codegen, compile, and one
    evaluation; then the same text in a rule through the full rules-file loader. The language's
    errors (ConditionError) are the only rejections; the loader reports them as load results."""
    from tiercel.rules import condition as cond

    try:
        tree = cond.parse(text)
        tree, _ = cond.expand_macros(tree, lambda name: None)
        for source in ("syscall", "k8s_audit"):
            try:
                checked = cond.check(tree, source)
                codes = cond.rule_event_codes(tree, source)
                ev = cond.build_evaluator(source, [("r", checked, codes)])
            except cond.ConditionError:
                continue
            _count("condition", "compiled")
            for evt in _sample_events()[source]:
                if ev(evt):
                    _count("condition", "matched")
    except cond.ConditionError:
        _count("condition", "rejected")
    rule = {"rule": "fuzz", "desc": "d", "condition": text, "output": "o %proc.name", "priority": "WARNING"}
    _load_rules_text(_yaml_dump([{"macro": "my_macro", "condition": "proc.name = a"},
                                 {"list": "my_list", "items": ["a", "b"]}, rule]))


@functools.cache
def _sample_events() -> dict[str, Any]:
    from tests.ruleskit import open_event
    from tiercel.common import eventtable as et
    from tiercel.common.event import Event
    from tiercel.ingest.k8s_webhook import to_event
    from tiercel.ingest.scap.reader import ScapParser
    from tiercel.ingest.state import StateEngine

    k8s = [to_event(o, json.dumps(o).encode()) for o in (_K8S_EVENT, {"kind": "Event"})]
    syscall = []
    for seed in _scap_seeds():  # events of every kind the captures hold, resolved by the state engine
        state = StateEngine()
        syscall += [e for it in ScapParser().feed(seed) if (e := state.feed(it)) is not None][:30]
    bare = Event(5, 1, 77, et.PPME["PPME_SYSCALL_OPENAT_2_X"], [3, -100, "/x", 1, 0, 0, 0])  # no thread, no fd
    return {"syscall": [open_event(1, "cat", "/etc/shadow"), bare, *syscall], "k8s_audit": k8s,
            "generic": [Event(0, 1, -1, et.PPME_PLUGINEVENT_E, [0, b"{}"], source="x", payload={})]}


def _yaml_dump(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False)


def _load_rules_text(text: str | bytes) -> None:
    from tiercel.rules.engine import Engine

    out = Engine().load([("fuzz.yaml", text)])
    for r in out.results:  # every failure is a load result with Falco's code and a message
        for p in r.errors:
            assert p.code.startswith("LOAD_ERR_") and p.message, p
        r.as_json()
        r.as_text()
    if out.ruleset is not None:
        _count("rules_file", "loaded")
        for evs in _sample_events().values():
            for ev in evs:
                out.ruleset.process(ev)
    else:
        _count("rules_file", "rejected")


_SCALARS = st.one_of(st.text(max_size=20), st.integers(-2, 1 << 65), st.booleans(), st.none(), st.floats(allow_nan=True),
                     st.sampled_from(_PRIOS + ["0.62.0", "0.99.0", "1", "x.y", "syscall", "k8s_audit", "weird"]))
_VALUE = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                             max_size=3), max_leaves=6)


@st.composite
def rules_items(draw: Any) -> list[Any]:
    """A rules file's items: lists, macros, rules (with appends, overrides, exceptions), version
    requirements; keys right and wrong, values well and badly typed."""
    names = ["a", "b", "my_list", "my_macro", "Rule A", "Rule B"]
    cond_text = st.one_of(st.sampled_from(_condition_seeds()), condition_soup(), st.sampled_from(names))
    items: list[Any] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["list", "macro", "rule", "rule", "required_engine_version",
                                     "required_plugin_versions", "junk"]))
        if kind == "list":
            it = {"list": draw(st.sampled_from(names)), "items": draw(st.lists(st.text(max_size=6) | st.sampled_from(names),
                                                                               max_size=4))}
        elif kind == "macro":
            it = {"macro": draw(st.sampled_from(names)), "condition": draw(cond_text)}
        elif kind == "rule":
            it = {"rule": draw(st.sampled_from(names)), "desc": "d", "condition": draw(cond_text),
                  "output": draw(st.sampled_from(["out %proc.name %fd.name", "%ka.verb %nope.field", "", "%", "x %evt.arg[0]"])),
                  "priority": draw(st.sampled_from(_PRIOS))}
            if draw(st.booleans()):
                it["source"] = draw(st.sampled_from(["syscall", "k8s_audit", "nope", "aws_cloudtrail"]))
            if draw(st.booleans()):
                it["exceptions"] = [{"name": "e", "fields": draw(st.sampled_from([["proc.name"], "proc.name",
                                                                                   ["proc.name", "fd.name"], ["nope"]])),
                                     "comps": draw(st.sampled_from([["="], "in", ["=", "startswith"], ["bad"]])),
                                     "values": draw(st.sampled_from([[["cat"]], [["cat", "/x"]], [[["a", "b"]]], "v", []]))}]
            if draw(st.booleans()):
                it["append" if draw(st.booleans()) else "override"] = draw(
                    st.sampled_from([True, False, {"condition": "append"}, {"output": "replace"}]))
            if draw(st.booleans()):
                it["tags"] = draw(st.lists(st.text(max_size=5), max_size=3))
            if draw(st.booleans()):
                it["enabled"] = draw(st.booleans() | st.just("yes"))
        elif kind == "required_engine_version":
            it = {"required_engine_version": draw(_SCALARS)}
        elif kind == "required_plugin_versions":
            it = {"required_plugin_versions": [{"name": draw(st.sampled_from(["k8saudit", "json", "nope"])),
                                                "version": draw(_SCALARS)}]}
        else:
            it = draw(_VALUE)
        if draw(st.integers(0, 5)) == 0 and isinstance(it, dict):  # a key of the wrong type or value
            it[draw(st.sampled_from(list(it) + ["unknown_key"]))] = draw(_VALUE)
        items.append(it)
    return items


@functools.cache
def _rules_seeds() -> list[str]:
    """Slices of Tiercel's default rules (a few items each: loading stays fast)."""
    import importlib.resources

    import yaml

    text = (importlib.resources.files("tiercel.rules") / "default_rules.yaml").read_text()
    items = yaml.safe_load(text)
    seeds = []
    for i in range(0, len(items), 6):
        seeds.append(_yaml_dump(items[i:i + 8]))
    return seeds


def rules_strategy() -> st.SearchStrategy[Any]:
    return st.one_of(rules_items().map(_yaml_dump), text_mutations(_rules_seeds), st.binary(max_size=200),
                     st.text(max_size=200))


@target("rules_file", allowed=(), strategy=rules_strategy, seeds=lambda: [s.encode() for s in _rules_seeds()])
def fuzz_rules_file(content: str | bytes) -> None:
    """A rules file through the full loader (reader, collector, compiler) and, when it loads, a few
    events through the ruleset. Nothing may raise: every problem is a load result."""
    _load_rules_text(content)


# --- .scap input ------------------------------------------------------------------------------


@functools.cache
def _scap_seeds() -> list[bytes]:
    """Small captures written by Tiercel's writer (threads, fds, events of several kinds; one of
    them big-endian, as an s390x host writes it), plus the small conformance captures when
    ../shared is beside the checkout."""
    from tests.conftest import CONFORMANCE
    from tests.ruleskit import open_event
    from tiercel.common import eventtable as et
    from tiercel.common.event import Event
    from tiercel.ingest.scap.writer import ScapWriter

    seeds = []
    for n, byteorder in ((1, "little"), (3, "little"), (3, "big")):
        buf = io.BytesIO()
        w = ScapWriter(buf, byteorder=byteorder)
        evs = [open_event(i, "cat", f"/etc/f{i}") for i in range(n)]
        w.write_header(threads=[evs[0].thread, evs[0].thread.parent])
        for ev in evs:
            w.write_event(Event(ev.num, ev.ts, ev.tid, et.PPME["PPME_SYSCALL_OPENAT_2_E"], [-100, "/etc/f", 1, 0]))
            w.write_event(ev)
        w.write_event(Event(99, evs[0].ts + 5, evs[0].tid, et.PPME["PPME_SYSCALL_EXECVE_19_X"],
                            [0, "/bin/sh", b"-c\x00ls\x00", 1000, 1000, 1, "/", 1024, 0, 0, 0, 0, 0, "sh",
                             b"cpu=/\x00", b"HOME=/\x00", 0, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0, "/bin/sh", 1, 0,
                             "/bin/sh"]))
        w.write_event(Event(100, evs[0].ts + 9, evs[0].tid, et.PPME["PPME_SYSCALL_CLOSE_X"], [0, 3]))
        w.close()
        seeds.append(buf.getvalue())
    for p in sorted(CONFORMANCE.glob("traces/**/*.scap")) if CONFORMANCE.is_dir() else []:
        if p.stat().st_size <= 64 << 10:
            data = p.read_bytes()
            seeds.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return seeds


def scap_strategy() -> st.SearchStrategy[bytes]:
    head = b"\x0a\x0d\x0d\x0a"
    return st.one_of(mutations(_scap_seeds), st.binary(max_size=256).map(lambda b: head + b), st.binary(max_size=64))


@target("scap", allowed=(), strategy=scap_strategy, seeds=_scap_seeds)
def fuzz_scap(data: bytes) -> None:
    """A capture through the sans-IO reader in uneven chunks, then the state engine and the wire
    encoder, as `tiercel replay` and ingest do. The only rejection is ScapError (the rest of the
    stream is unreadable); a bad block or event is skipped and counted."""
    from tiercel.common.wire import Decoder, Encoder
    from tiercel.ingest.scap.blocks import ScapError
    from tiercel.ingest.scap.reader import ScapParser
    from tiercel.ingest.state import StateEngine

    parser = ScapParser()
    state = StateEngine()
    enc = Encoder()
    items = []
    try:
        step = 1 + (len(data) % 97)
        for i in range(0, len(data), step * 31):
            items += parser.feed(data[i:i + step * 31])
        parser.close()
    except ScapError as e:
        assert str(e)
        _count("scap", "rejected")
    dec = Decoder()
    for it in items:
        ev = state.feed(it)
        if ev is not None:
            dec.decode(enc.encode(ev))  # what ingest sends, the rules worker can read back


# --- audit netlink records --------------------------------------------------------------------

_AUDIT_KEYS = ["arch", "syscall", "success", "exit", "a0", "a1", "a2", "a3", "items", "ppid", "pid", "auid",
               "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "tty", "ses", "comm", "exe",
               "key", "argc", "a0[0]", "a0_len", "cwd", "item", "name", "inode", "dev", "mode", "ouid", "ogid",
               "nametype", "saddr", "fd0", "fd1", "proctitle", "msg", "subj"]
_AUDIT_VALUES = ["0", "1", "-1", "c000003e", "yes", "no", "2", "59", "257", "18446744073709551615", "ffffffffffffff9c",
                 '"cat"', '"/etc/shadow"', "2F6574632F736861646F77", "(null)", "00", "0A00", "020000357F000001",
                 "0A001F90000000000000000000000000000000010000000", "01002F746D702F73", "zz", "-", "'x y'",
                 '"unterminated', "0x10", "fd:01", "0100644", "PARENT", "NORMAL", "DELETE", "CREATE"]
_AUDIT_TYPES = [1300, 1302, 1307, 1309, 1306, 1327, 1320, 1317, 1112, 1000, 1400, 1323, 1338, 9999]


@st.composite
def audit_records(draw: Any) -> list[tuple[int, bytes]]:
    """Records of a few events (interleaved serials), well and badly formed, EOEs missing at times."""
    recs = []
    for _ in range(draw(st.integers(1, 12))):
        rtype = draw(st.sampled_from(_AUDIT_TYPES))
        serial = draw(st.integers(1, 4))
        stamp = draw(st.sampled_from([f"audit(1718000000.{draw(st.integers(0, 999))}:{serial}): ",
                                      f"audit(1718000000.123:{serial}):", "audit(x:y): ", "", "audit(1.2:3"]))
        fields = " ".join(f"{draw(st.sampled_from(_AUDIT_KEYS))}={draw(st.sampled_from(_AUDIT_VALUES))}"
                          for _ in range(draw(st.integers(0, 10))))
        tail = draw(st.sampled_from(["", " junk", " =x", " a=", "\x00"]))
        recs.append((rtype, (stamp + fields + tail).encode()))
    if draw(st.booleans()):
        recs.append((1320, f"audit(1718000000.1:{draw(st.integers(1, 4))}): ".encode()))
    return recs


def _audit_to_netlink(recs: list[tuple[int, bytes]]) -> bytes:
    from tiercel.ingest.audit import netlink as nl

    return b"".join(nl.pack_message(t, p, seq=i, flags=0) for i, (t, p) in enumerate(recs))


@functools.cache
def _audit_seeds() -> list[bytes]:
    recs = [(1300, b'audit(1718000000.100:7): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd '
                   b'a2=0 a3=0 items=1 ppid=1 pid=42 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 '
                   b'fsgid=0 tty=pts0 ses=1 comm="cat" exe="/usr/bin/cat" key="tiercel"'),
            (1307, b'audit(1718000000.100:7): cwd="/root"'),
            (1302, b'audit(1718000000.100:7): item=0 name="/etc/shadow" inode=12 dev=fd:01 mode=0100640 '
                   b'ouid=0 ogid=42 rdev=00:00 nametype=NORMAL'),
            (1327, b"audit(1718000000.100:7): proctitle=636174002F6574632F736861646F77"),
            (1320, b"audit(1718000000.100:7): "),
            (1300, b'audit(1718000000.200:8): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 '
                   b'items=2 ppid=1 pid=43 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
                   b'tty=pts0 ses=1 comm="ls" exe="/usr/bin/ls" key="tiercel"'),
            (1309, b'audit(1718000000.200:8): argc=2 a0="ls" a1=2D6C61'),
            (1320, b"audit(1718000000.200:8): ")]
    return [_audit_to_netlink(recs)]


def audit_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(audit_records().map(_audit_to_netlink), mutations(_audit_seeds), st.binary(max_size=128))


@target("audit", allowed=(), strategy=audit_strategy, seeds=_audit_seeds)
def fuzz_audit(data: bytes) -> None:
    """Netlink bytes as the kernel reader gets them, both ways ingest reads them: the datagram hot
    path (`feed_datagrams`, one record per datagram) and the framing parser (`iter_messages`,
    NetlinkError rejects the rest of a datagram) with `feed`; then the translation to syscall exit
    events, the live state engine (with the identity each SYSCALL record states) and the wire
    encoder. A garbled record is counted, never raised."""
    from tiercel.common.wire import Encoder
    from tiercel.ingest.audit import netlink as nl
    from tiercel.ingest.audit.assembler import Assembler
    from tiercel.ingest.audit.translate import Translator
    from tiercel.ingest.livestate import LiveState

    datagrams = []
    off = 0
    while off + 16 <= len(data):  # split as the kernel sends them: one netlink message per datagram
        n = int.from_bytes(data[off:off + 4], "little")
        step = max(16, min((n + 3) & ~3, len(data) - off))
        datagrams.append(data[off:off + step])
        off += step
    if off < len(data):
        datagrams.append(data[off:])
    asm = Assembler(max_open=4)
    events: list = []
    asm.feed_datagrams(datagrams, 0, events)
    asm2 = Assembler(max_open=4)
    try:
        for m in nl.iter_messages(data):
            events += asm2.feed(m.type, m.payload, now_ns=len(events))
    except nl.NetlinkError as e:
        assert str(e)
        _count("audit", "rejected")
    events += asm.expire(1 << 62) + asm.flush() + asm2.expire(1 << 62) + asm2.flush()
    tr = Translator(self_pid=1, resolve_sockets=False)
    state = LiveState(proc="/nonexistent-proc")
    enc = Encoder()
    for ae in events:
        pair = tr.translate(ae)
        if pair is not None:
            _count("audit", "translated")
            ev, ident = pair if isinstance(pair, tuple) else (pair, None)
            enc.encode(state.process(ev, ident))


# --- k8s audit JSON ---------------------------------------------------------------------------

_K8S_EVENT = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "a-1",
              "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/pods", "verb": "create",
              "user": {"username": "alice", "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.1"],
              "objectRef": {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"},
              "responseStatus": {"code": 201},
              "requestObject": {"kind": "Pod", "spec": {"containers": [{"image": "nginx", "securityContext":
                                                                        {"privileged": True}}],
                                                        "hostNetwork": True, "volumes": [{"hostPath": {"path": "/"}}]}},
              "requestReceivedTimestamp": "2024-06-10T06:13:20.123456Z", "stageTimestamp": "2024-06-10T06:13:20.2Z",
              "annotations": {"authorization.k8s.io/decision": "allow"}}

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False)
                     | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=10)


@st.composite
def k8s_bodies(draw: Any) -> bytes:
    """Audit events whose known keys take values of every JSON type, in Events, EventLists, arrays
    and concatenations."""
    def event() -> dict:
        ev = json.loads(json.dumps(_K8S_EVENT))
        for _ in range(draw(st.integers(0, 4))):
            path = draw(st.sampled_from([("verb",), ("user",), ("user", "username"), ("user", "groups"),
                                         ("objectRef",), ("objectRef", "resource"), ("requestObject",),
                                         ("requestObject", "spec", "containers"), ("responseStatus", "code"),
                                         ("stageTimestamp",), ("sourceIPs",), ("annotations",), ("kind",),
                                         ("requestObject", "spec", "volumes")]))
            node = ev
            for k in path[:-1]:
                node = node.setdefault(k, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node[path[-1]] = draw(_JSON)
        return ev

    shape = draw(st.integers(0, 4))
    if shape == 0:
        body: Any = event()
    elif shape == 1:
        body = {"kind": "EventList", "items": [event() for _ in range(draw(st.integers(0, 3)))]}
    elif shape == 2:
        body = [event(), draw(_JSON)]
    elif shape == 3:
        return b"\n".join(json.dumps(event()).encode() for _ in range(draw(st.integers(1, 3))))
    else:
        body = draw(_JSON)
    return json.dumps(body).encode()


def k8s_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(k8s_bodies(), mutations(lambda: [json.dumps(_K8S_EVENT).encode()]), st.binary(max_size=64),
                     st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
                     st.integers(1, 5000).map(lambda n: b'{"kind":"EventList","items":' * n + b"[]" + b"}" * n))


@functools.cache
def _default_ruleset() -> Any:
    import importlib.resources

    from tiercel.rules.engine import Engine

    text = (importlib.resources.files("tiercel.rules") / "default_rules.yaml").read_text()
    out = Engine({"rule_matching": "all"}).load([("default_rules.yaml", text)])
    assert out.ruleset is not None
    return out.ruleset


@target("k8s_audit", allowed=(), strategy=k8s_strategy, seeds=lambda: [json.dumps(_K8S_EVENT).encode()])
def fuzz_k8s_audit(body: bytes) -> None:
    """A webhook body through the splitter (BadRequest, with the status and reason the webhook
    answers, is the rejection), each event into the event model, through the default ruleset's
    k8s_audit rules and the alert formatter, and over the wire."""
    from tiercel.common.wire import BadEvent, Decoder, Encoder
    from tiercel.ingest.k8s_webhook import BadRequest, split_events, to_event
    from tiercel.rules.alerts import AlertFormatter

    try:
        found, bad = split_events(body, 262_144)
    except BadRequest as e:
        assert e.status == 400 and e.reason and str(e)
        _count("k8s_audit", "rejected")
        return
    rs = _default_ruleset()
    fmt = AlertFormatter({}, hostname="h")
    enc, dec = Encoder(), Decoder()
    for obj, raw in found:
        try:
            item = enc.encode(to_event(obj, raw))
        except BadEvent as e:  # the webhook counts it (k8s_bad_event): nested deeper than msgpack carries
            assert str(e)
            _count("k8s_audit", "bad_event")
            continue
        ev = dec.decode(item)
        for m in rs.process(ev):
            _count("k8s_audit", "alerts")
            fmt.alert(m)


# --- gRPC inputs ------------------------------------------------------------------------------


@st.composite
def input_messages(draw: Any) -> bytes:
    from tiercel.common import eventtable as et
    from tiercel.pb.falco import inputs_pb2

    m = inputs_pb2.event(id=draw(st.text(max_size=5)), source=draw(st.sampled_from(
        ["", "syscall", "k8s_audit", "myjson", "bad source", "x" * 70])), hostname=draw(st.sampled_from(
            ["", "node-1", "bad host!", "a" * 300])))
    if draw(st.booleans()):
        m.time.seconds = draw(st.integers(-(1 << 40), 1 << 40))
        m.time.nanos = draw(st.integers(-(1 << 31), (1 << 31) - 1))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        m.json = draw(st.one_of(k8s_bodies().map(bytes.decode), st.text(max_size=30),
                                _JSON.map(json.dumps)))
    elif kind == 1:
        s = m.syscall
        s.type = draw(st.sampled_from(["openat", "execve", "connect", "open", "clone", "nope", "", "read",
                                       "procexit", "socket", "sendto", "ptrace", "bpf", "container"]))
        s.res = draw(st.integers(-(1 << 63), (1 << 63) - 1))
        names = [p.name for c in et.codes(s.type) if (i := et.info(c)) for p in i.params] or ["fd", "name"]
        for _ in range(draw(st.integers(0, 4))):
            s.params[draw(st.sampled_from(names + ["bogus"]))] = draw(
                st.sampled_from(["3", "-1", "0x10", "/etc/shadow", "x", "10.0.0.1:80", "", "99999999999999999999999"]))
        s.tid, s.pid, s.ppid = (draw(st.integers(-(1 << 63), (1 << 63) - 1)) for _ in range(3))
        s.comm, s.exe, s.cwd, s.fd_name, s.fd_type = (draw(st.text(max_size=8)) for _ in range(5))
        s.args.extend(draw(st.lists(st.text(max_size=5), max_size=3)))
        s.ancestors.extend(draw(st.lists(st.text(max_size=5), max_size=20)))
        s.uid = draw(st.integers(0, (1 << 32) - 1))
    return m.SerializeToString()


@functools.cache
def _inputs_seeds() -> list[bytes]:
    from tiercel.pb.falco import inputs_pb2

    sc = inputs_pb2.syscall_event(type="openat", res=3, params={"fd": "3", "name": "/etc/shadow", "flags": "1"},
                                  tid=42, pid=42, ppid=1, comm="cat", exe="cat", exepath="/usr/bin/cat",
                                  args=["/etc/shadow"], cwd="/", fd_name="/etc/shadow", fd_type="file",
                                  ancestors=["bash", "sshd"])
    return [inputs_pb2.event(id="1", source="syscall", hostname="n", syscall=sc).SerializeToString(),
            inputs_pb2.event(id="2", source="k8s_audit", json=json.dumps(_K8S_EVENT)).SerializeToString(),
            inputs_pb2.event(id="3", source="myjson", json='{"a": {"b": [1, 2]}}').SerializeToString()]


def inputs_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(input_messages(), mutations(_inputs_seeds), st.binary(max_size=64))


@target("inputs", allowed=(), strategy=inputs_strategy, seeds=_inputs_seeds)
def fuzz_inputs(data: bytes) -> None:
    """A `falco.inputs.event` message: protobuf parsing (DecodeError is gRPC's own rejection before
    our code runs), conversion (Rejected, sent back in the ack), the wire encoding the API
    publishes, and the default ruleset on the decoded events."""
    from google.protobuf.message import DecodeError

    from tiercel.api.inputs import Rejected, convert
    from tiercel.common.wire import Decoder, Encoder
    from tiercel.pb.falco import inputs_pb2

    try:
        msg = inputs_pb2.event.FromString(data)
    except DecodeError:
        _count("inputs", "not_protobuf")
        return
    try:
        conv = convert(msg, "fuzz-host", 262_144)
    except Rejected as e:
        assert str(e)
        _count("inputs", "rejected")
        return
    enc, dec = Encoder(), Decoder()
    rs = _default_ruleset()
    for ev in conv.events:
        back = dec.decode(enc.encode(ev))
        rs.process(back)
    _count("inputs", "accepted")


# --- bus envelopes ----------------------------------------------------------------------------


@functools.cache
def _bus_seeds() -> list[bytes]:
    from tests.ruleskit import open_event
    from tiercel.common import bus
    from tiercel.common.wire import encode_events

    evs = [open_event(i, "cat" if i % 2 else "nginx", "/etc/shadow") for i in range(3)]
    return [bus.EventBatch("h", "syscall", 1, encode_events(evs), 5).encode(),
            bus.EventBatch("h", "syscall", 7, encode_events(evs[:1]), 5).encode()]


@st.composite
def wire_items(draw: Any) -> Any:
    """A wire event item of the right outer shape with any values in its slots."""
    import msgpack

    from tiercel.common.wire import encode_events

    good = msgpack.unpackb(draw(st.sampled_from(encode_events(_bus_events()))), raw=False, use_list=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, 15))
        if i in (7, 8) and isinstance(good[i], list) and good[i] and draw(st.booleans()):
            j = draw(st.integers(0, len(good[i]) - 1))
            good[i][j] = draw(_MSGPACK)
        else:
            good[i] = draw(_MSGPACK)
    return msgpack.packb(good, use_bin_type=True) if draw(st.integers(0, 3)) else good


_MSGPACK = st.recursive(st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.floats()
                        | st.text(max_size=8) | st.binary(max_size=8),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4) | st.integers(-9, 1 << 40),
                                                                                     inner, max_size=3),
                        max_leaves=8)


@functools.cache
def _bus_events() -> list[Any]:
    from tests.ruleskit import open_event

    return [open_event(i, "cat", "/etc/shadow") for i in range(2)]


@st.composite
def batches(draw: Any) -> bytes:
    import msgpack

    items = draw(st.lists(wire_items() | _MSGPACK, max_size=4))
    env = [1, draw(st.sampled_from(["h", "", "a.b"]) | st.text(max_size=4)), "syscall",
           draw(st.integers(0, (1 << 64) - 1) | st.just(-1)), 0, items]
    if draw(st.integers(0, 4)) == 0:
        env[draw(st.integers(0, 5))] = draw(_MSGPACK)
    return msgpack.packb(env, use_bin_type=True)


def bus_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(batches(), mutations(_bus_seeds), st.binary(max_size=64),
                     st.integers(1, 3000).map(lambda n: b"\x91" * n + b"\xc0"))


@functools.cache
def _pipeline() -> Any:
    from tiercel.common.config import Config
    from tiercel.rules.compiled import EngineAdapter
    from tiercel.rules.pipeline import Pipeline

    adapter = EngineAdapter(Config({}), "fuzz")
    p = Pipeline(adapter, "fuzz")
    p.swap(_default_ruleset(), 1)
    return p


@target("bus_events", allowed=(), strategy=bus_strategy, seeds=_bus_seeds)
def fuzz_bus_events(data: bytes) -> None:
    """An event batch as a rules worker receives it: the envelope (`EventBatch.decode`: BadEnvelope
    with a drop reason), the wire events (`decode_events`: bad items counted), and the whole
    pipeline, which must account for every event as evaluated or dropped and never raise."""
    from tiercel.common import bus
    from tiercel.common.wire import decode_events

    try:
        batch = bus.EventBatch.decode(data)
    except bus.BadEnvelope as e:
        assert e.reason in ("not_msgpack", "shape", "schema_version", "too_large"), e.reason
        _count("bus_events", "bad_envelope")
    else:
        events, bad = decode_events(batch)
        assert len(events) + bad == len(batch.events)
        _count("bus_events", "decoded" if events else "no_event")
    out = _pipeline().process(data)
    assert out.ok or out.drops
    if out.ok:
        assert out.drops.get("bad_event", 0) <= out.n_events
    for k in ("eval_error", "format_error"):  # counted drops, but a sign of a decoder that lets bad values in
        if out.drops.get(k):
            _count("bus_events", k)


_ALERT = {"hostname": "h", "id": "h:1:abc", "output": "o", "output_fields": {"proc.name": "cat", "n": 1, "x": None},
          "priority": "Warning", "rule": "R", "seq": 1, "source": "syscall", "tags": ["a"],
          "time": "2024-06-10T06:13:20.123456789Z"}
_DROP = {"v": 1, "stage": "ingest", "host": "h", "instance": "i", "time_ns": 1, "interval_s": 1.0, "n_evts": 3,
         "n_drops": 1, "drops": {"queue_full": 1}, "totals": {"queue_full": 2}}
_REQ = {"v": 1, "op": "put", "name": "a.yaml", "content": "- list: l\n  items: []\n", "expected_revision": 3}


@st.composite
def json_envelopes(draw: Any) -> bytes:
    base = json.loads(json.dumps(draw(st.sampled_from([_ALERT, _DROP, _REQ]))))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(base) + ["extra"]))
        base[key] = draw(_JSON)
    return json.dumps(base).encode()


def envelope_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(json_envelopes(), mutations(lambda: [json.dumps(x).encode() for x in (_ALERT, _DROP, _REQ)]),
                     st.binary(max_size=32), st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n))


@target("bus_json", allowed=(), strategy=envelope_strategy,
        seeds=lambda: [json.dumps(x).encode() for x in (_ALERT, _DROP, _REQ)])
def fuzz_bus_json(data: bytes) -> None:
    """The JSON envelopes on the bus, as their consumers read them: an alert as the API turns it
    into a `falco.outputs.response` (BadEnvelope: the hub counts and skips it), a drop report, a
    heartbeat, a control request and reply. BadEnvelope is the only rejection."""
    from tiercel.api import alerts as api_alerts
    from tiercel.common import bus

    for decode in (bus.DropReport.decode, bus.Heartbeat.decode, bus.decode_request, bus.decode_reply):
        try:
            decode(data)
        except bus.BadEnvelope as e:
            assert e.reason and str(e)
    try:
        bus.decode_alert(data)
        _count("bus_json", "alert")
    except bus.BadEnvelope as e:
        assert e.reason
    _api_alert(api_alerts, data)


def _api_alert(api_alerts: Any, data: bytes) -> None:
    from tiercel.common import bus

    try:
        api_alerts.Alert.from_bus(data, None, 1)
        _count("bus_json", "api_alert")
    except bus.BadEnvelope as e:
        assert e.reason
