"""Event-type sets of conditions (spec §4.2) and of the stable ruleset's rules (§6)."""

from __future__ import annotations

import pytest

from tiercel.common import eventtable as et
from tiercel.rules import condition as C
from tiercel.rules.condition.evttypes import all_codes, codes_for_name, event_codes, rule_event_codes


def names(text: str, **kw) -> set[str] | str:
    codes = event_codes(C.parse(text), **kw)
    if codes == all_codes():
        return "ALL"
    if len(codes) > len(all_codes()) // 2:
        return "ALL-" + ",".join(n for n in C.event_names(all_codes() - codes) if n != "asyncevent")
    return {n for n in C.event_names(codes) if n != "asyncevent"}


@pytest.mark.parametrize("text, expected", [
    ("evt.type in (open, openat) and proc.name = cat", {"open", "openat"}),
    ("evt.type = open or proc.name = cat", "ALL"),
    ("not evt.type in (open, close)", "ALL-close,open"),
    ("evt.type != open", "ALL-open"),
    ("not evt.type != open", {"open"}),
    ("evt.type == open", {"open"}),
    ("syscall.type = connect", {"connect"}),
    ("evt.type exists", "ALL"),
    ("not evt.type exists", set()),
    ("proc.name = cat", "ALL"),
    ("not proc.name = cat", "ALL"),
    ("evt.type startswith open", "ALL"),
    ("tolower(evt.type) = open", "ALL"),
    ("evt.type[1] = open", "ALL"),
    ("evt.type in (open, openat) and evt.type in (openat, close)", {"openat"}),
    ("evt.type = open and not (evt.type = open)", set()),
    ("not (evt.type = open and proc.name = x)", "ALL"),
    ("not (evt.type = open or evt.type = close)", "ALL-close,open"),
    ("not (not evt.type = open and not evt.type = close)", {"open", "close"}),
    ("(evt.type = open or evt.type = close) and not evt.type = close", {"open"}),
    ("evt.type in ()", set()),
    ("evt.type = execve and evt.dir = <", {"execve"}),
    # evt.num folding is a Falco master feature, off by default (Tiercel matches 0.44)
    ("evt.num = 0", "ALL"),
])
def test_event_type_sets(text, expected):
    assert names(text) == expected


def test_evtnum_folding_as_in_master():
    assert names("evt.num = 0", evtnum_folding=True) == set()
    assert names("not evt.num = 0", evtnum_folding=True) == "ALL"
    assert names("evt.type = open and not evt.num=0", evtnum_folding=True) == {"open"}
    assert names("evt.num >= 1 and evt.type = open", evtnum_folding=True) == {"open"}
    assert names("evt.num < 1 or evt.type = open", evtnum_folding=True) == {"open"}


def test_names_to_codes():
    assert codes_for_name("open") == frozenset({2, 3})
    assert codes_for_name("execve") >= {et.PPME["PPME_SYSCALL_EXECVE_19_E"], et.PPME["PPME_SYSCALL_EXECVE_19_X"]}
    # a syscall without a dedicated event is recorded as a generic event
    generic = codes_for_name("mprotect")
    assert generic == frozenset({et.PPME_GENERIC_E, et.PPME_GENERIC_X}) or "mprotect" in C.event_names(generic)
    assert codes_for_name("nosuchevent") == frozenset()


def test_rule_index_codes():
    tree = C.parse("evt.type = open")
    assert rule_event_codes(tree, "syscall") == frozenset({2, 3, et.PPME_ASYNCEVENT_E})
    assert rule_event_codes(tree, "k8s_audit") == frozenset({et.PPME_PLUGINEVENT_E, et.PPME_ASYNCEVENT_E})
    assert C.event_names(frozenset({2, 3})) == ["asyncevent", "open"]


# §6: the event-type set of each rule of the stable ruleset.
STABLE = {
    "execve,execveat": ["Run shell untrusted", "System user interactive", "Terminal shell in container",
                        "Netcat Remote Code Execution in Container", "Search Private Keys or Passwords",
                        "Remove Bulk Data from Disk", "Debugfs Launched in Privileged Container",
                        "Find AWS Credentials", "Execution from /dev/shm", "Drop and execute new binary in container",
                        "Fileless execution via memfd_create"],
    "open,openat,openat2": ["Directory traversal monitored file read", "Read sensitive file trusted after startup",
                            "Read sensitive file untrusted", "Clear Log Activities",
                            "Detect release_agent File Container Escapes"],
    "connect": ["Contact K8S API Server From Container"],
    "symlink,symlinkat": ["Create Symlink Over Sensitive Files"],
    "link,linkat": ["Create Hardlink Over Sensitive Files"],
    "socket": ["Packet socket created in container"],
    "dup,dup2,dup3": ["Redirect STDOUT/STDIN to Network Connection in Container"],
    "finit_module,init_module": ["Linux Kernel Module Injection Detected"],
    "ptrace": ["PTRACE attached to process", "PTRACE anti-debug attempt"],
    "connect,sendmsg,sendto": ["Disallowed SSH Connection Non Standard Port"],
}


def test_stable_ruleset_event_types(conformance_dir):
    import yaml

    items = [i for i in yaml.load((conformance_dir / "rules" / "upstream" / "falco_rules.yaml").read_text(),
                                  Loader=yaml.BaseLoader) if isinstance(i, dict)]
    lists: dict[str, list[str]] = {}
    for i in items:
        if "list" in i:
            lists[i["list"]] = [x for it in (i.get("items") or []) for x in lists.get(it, [it])]
    macros = {i["macro"]: C.parse(C.substitute_lists(i["condition"], list(lists.items()))[0])
              for i in items if "macro" in i}
    got = {}
    for i in items:
        if "rule" in i:
            tree = C.parse(C.substitute_lists(i["condition"], list(lists.items()))[0])
            tree, _ = C.expand_macros(tree, macros.get)
            got[i["rule"]] = ",".join(n for n in C.event_names(event_codes(tree)) if n != "asyncevent")
    expected = {rule: types for types, rules in STABLE.items() for rule in rules}
    assert got == expected
