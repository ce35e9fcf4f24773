"""Type checking and generated-code evaluation of conditions: every operator per field type, the
missing-value rules and the quirks of spec §8, on a test source with one field per type."""

from __future__ import annotations

import pytest

from tests.condition_fields import IP, SOURCE, Evt
from tiercel.rules.condition import (
    CompileError,
    build_evaluator,
    check,
    compile_output,
    generate_evaluator,
    parse,
)
from tiercel.rules.condition.checker import parse_int, parse_value


def ev(cond: str, evt: Evt) -> bool:
    e = build_evaluator(SOURCE, [("r", parse(cond), None)])
    assert e.errors == 0
    res = e(evt)
    assert e.errors == 0, e.last_error
    return bool(res)


def err(cond: str) -> CompileError:
    with pytest.raises(CompileError) as e:
        check(parse(cond), SOURCE)
    return e.value


# -- operators per type (§2.4) -------------------------------------------------------------------

@pytest.mark.parametrize("cond, values, expected", [
    # strings
    ("t.str = bash", {"str": "bash"}, True),
    ("t.str == bash", {"str": "bash"}, True),
    ("t.str = bash", {"str": "Bash"}, False),
    ("t.str != bash", {"str": "sh"}, True),
    ("t.str != bash", {"str": "bash"}, False),
    ("t.str contains as", {"str": "bash"}, True),
    ("t.str contains sa", {"str": "bash"}, False),
    ("t.str icontains AS", {"str": "bAsh"}, True),
    ("t.str icontains É", {"str": "é"}, False),  # ASCII-only folding
    ("t.str startswith ba", {"str": "bash"}, True),
    ("t.str endswith sh", {"str": "bash"}, True),
    ("t.str endswith ba", {"str": "bash"}, False),
    ("t.str < 5", {"str": "10"}, True),  # lexicographic
    ("t.str > 5", {"str": "10"}, False),
    ("t.str <= 10", {"str": "10"}, True),
    ("t.str in (a, bash, c)", {"str": "bash"}, True),
    ("t.str in (a, c)", {"str": "bash"}, False),
    ("t.str in ()", {"str": "bash"}, False),
    ("t.str intersects (bash)", {"str": "bash"}, True),
    ("t.str in bash", {"str": "bash"}, True),  # a bare identifier is one value
    ("t.str exists", {"str": ""}, True),
    ("t.str = \"\"", {"str": ""}, True),
    ("t.str = -1", {"str": "-1"}, True),
    ("t.str = 0x10", {"str": "0x10"}, True),
    # glob: fnmatch without FNM_PATHNAME, whole string
    ("t.path glob /etc/*", {"path": "/etc/a/b"}, True),
    ("t.path glob /etc/*", {"path": "/etcx"}, False),
    ("t.path glob /etc/?", {"path": "/etc/a"}, True),
    ("t.path glob '/etc/[a-c]x'", {"path": "/etc/bx"}, True),
    ("t.path glob '/etc/[!a-c]x'", {"path": "/etc/bx"}, False),
    ("t.path glob '/etc/[^a-c]x'", {"path": "/etc/dx"}, True),
    ("t.path glob '/etc/\\\\*'", {"path": "/etc/*"}, True),
    ("t.path glob '/etc/\\\\*'", {"path": "/etc/a"}, False),
    ("t.path glob '[[:digit:]]x'", {"path": "7x"}, True),
    ("t.path glob /ETC/*", {"path": "/etc/a"}, False),
    ("t.path iglob /ETC/*", {"path": "/etc/a"}, True),
    ("t.path glob *.so", {"path": "a\nb.so"}, True),
    # regex: full match
    ("t.str regex 'ba.*'", {"str": "bash"}, True),
    ("t.str regex 'as'", {"str": "bash"}, False),
    ("t.str regex 'b(a|x)sh'", {"str": "bash"}, True),
    # pmatch: whole-component prefixes, globs per component
    ("t.path pmatch (/tmp/hello)", {"path": "/tmp/hello"}, True),
    ("t.path pmatch (/tmp/hello)", {"path": "/tmp/hello/world"}, True),
    ("t.path pmatch (/tmp/hello)", {"path": "/tmp/hello_world"}, False),
    ("t.path pmatch (/tmp)", {"path": "/tmpfoo"}, False),
    ("t.path pmatch (/)", {"path": "/anything/at/all"}, True),
    ("t.path pmatch (/usr/*/bin)", {"path": "/usr/local/bin/x"}, True),
    ("t.path pmatch (/usr/*/bin)", {"path": "/usr/local/sbin/x"}, False),
    ("t.path pmatch (/a, /b/c)", {"path": "/b/c/d"}, True),
    # numbers
    ("t.u32 = 5", {"u32": 5}, True),
    ("t.u32 != 5", {"u32": 6}, True),
    ("t.u32 < 6", {"u32": 5}, True),
    ("t.u32 >= 6", {"u32": 5}, False),
    ("t.u32 in (1, 5)", {"u32": 5}, True),
    ("t.u32 = -1", {"u32": 0xFFFFFFFF}, True),  # unsigned wrap-around
    ("t.i64 = -1", {"i64": -1}, True),
    ("t.i64 > -2", {"i64": -1}, True),
    ("t.u8 = 300", {"u8": 44}, True),  # truncated to 8 bits
    ("t.dbl = 2", {"dbl": 2.0}, True),
    ("t.port = ssh", {"port": 22}, True),
    ("t.port in (http, 22)", {"port": 80}, True),
    # bool
    ("t.bool = true", {"bool": True}, True),
    ("t.bool = false", {"bool": True}, False),
    ("t.bool != true", {"bool": False}, True),
    ("t.bool in (true)", {"bool": True}, True),
    # IPs and networks
    ("t.ip = 10.0.0.1", {"ip": IP("10.0.0.1")}, True),
    ("t.ip = ::1", {"ip": IP("::1")}, True),
    ("t.ip in (10.0.0.1, 10.0.0.2)", {"ip": IP("10.0.0.2")}, True),
    ("t.ip != 10.0.0.1", {"ip": IP("10.0.0.2")}, True),
    ("t.net = 10.0.0.0/8", {"net": IP("10.1.2.3")}, True),
    ("t.net = 10.0.0.0/8", {"net": IP("11.1.2.3")}, False),
    ("t.net = 10.0.0.0/8", {"net": IP("::1")}, False),
    ("t.net != 10.0.0.0/8", {"net": IP("11.1.2.3")}, True),
    ("t.net in (192.168.0.0/16, 10.0.0.0/8)", {"net": IP("10.1.2.3")}, True),
    # buffers
    ("t.buf contains abc", {"buf": b"xxabcxx"}, True),
    ("t.buf bcontains 616263", {"buf": b"xxabcxx"}, True),
    ("t.buf bcontains 'CAFE'", {"buf": b"\xca\xfe"}, True),
    ("t.buf bstartswith 7878", {"buf": b"xxabcxx"}, True),
    ("t.buf bstartswith 6162", {"buf": b"xxabcxx"}, False),
    ("t.buf startswith xx", {"buf": b"xxabc"}, True),
    ("t.buf = abc", {"buf": b"abc"}, True),
    # list fields: in is a subset test, intersects any overlap
    ("t.list in (a, b, c)", {"list": ["a", "b"]}, True),
    ("t.list in (a, c)", {"list": ["a", "b"]}, False),
    ("t.list intersects (b, z)", {"list": ["a", "b"]}, True),
    ("t.list intersects (y, z)", {"list": ["a", "b"]}, False),
    ("t.list exists", {"list": ["a"]}, True),
    ("t.list exists", {"list": []}, False),
    # other operators on a list field: some element matches (older Falco accepted them)
    ("t.list = b", {"list": ["a", "b"]}, True),
    ("t.list contains x", {"list": ["a", "b"]}, False),
    ("t.list startswith b", {"list": ["a", "bc"]}, True),
    ("t.list != a", {"list": ["a"]}, False),
    ("t.list intersects (a)", {"list": []}, False),
    ("not t.list intersects (a)", {"list": []}, True),
    # modifiers (Falco 0.44)
    ("t.str startswith oneof (ba, b, x)", {"str": "bash"}, False),  # two match
    ("t.str startswith oneof (ba, x)", {"str": "bash"}, True),
    ("t.str startswith anyof (x, ba)", {"str": "bash"}, True),
    ("t.str startswith allof (b, ba)", {"str": "bash"}, True),
    ("t.str startswith allof (b, x)", {"str": "bash"}, False),
    ("t.str contains anyof ()", {"str": "bash"}, False),
    ("t.str contains allof ()", {"str": "bash"}, False),
    ("t.str = anyof (a, bash)", {"str": "bash"}, True),
    ("t.str != allof (a, b)", {"str": "bash"}, True),  # not in
    ("t.str != allof (a, bash)", {"str": "bash"}, False),
    ("t.str = oneof (bash, bash)", {"str": "bash"}, False),
    ("t.path glob anyof ('/x/*', '/etc/*')", {"path": "/etc/p"}, True),
    ("t.str icontains allof (A, S)", {"str": "bash"}, True),
    ("t.str = oneof", {"str": "oneof"}, True),  # not a modifier: a value
    # ancestors: the bare form is existential from the parent up
    ("t.anc = sshd", {"anc": ["bash", "sshd", "init"]}, True),
    ("t.anc = bash", {"anc": ["bash", "sshd", "init"]}, False),  # [0] is the process itself
    ("t.anc[0] = bash", {"anc": ["bash", "sshd", "init"]}, True),
    ("t.anc[2] = init", {"anc": ["bash", "sshd", "init"]}, True),
    ("t.anc[9] = init", {"anc": ["bash", "sshd", "init"]}, False),
    ("t.anc != sshd", {"anc": ["bash", "sshd", "init"]}, True),  # some ancestor is not sshd
    ("t.anc != sshd", {"anc": ["bash", "sshd"]}, False),
    ("t.anc in (init, x)", {"anc": ["bash", "sshd", "init"]}, True),
    ("t.anc startswith ss", {"anc": ["bash", "sshd"]}, True),
    ("t.anc exists", {"anc": ["bash"]}, False),
    # dotted argument and required argument
    ("t.arg.flags contains O_TRUNC", {"args": {"flags": "O_WRONLY|O_TRUNC"}}, True),
    ("t.req[k] = v", {"args": {"k": "v"}}, True),
    ("t.req['a b'] = v", {"args": {"a b": "v"}}, True),
    # transformers
    ("tolower(t.str) = bash", {"str": "BaSh"}, True),
    ("toupper(t.str) = BASH", {"str": "bash"}, True),
    ("tolower(t.list) intersects (a)", {"list": ["A"]}, True),
    ("b64(t.str) = hello", {"str": "aGVsbG8"}, True),
    ("b64(t.str) = hello", {"str": "aGVsbG8="}, True),
    ("b64(t.str) exists", {"str": "!!!"}, False),  # a failed transformer is missing
    ("basename(t.path) = ls", {"path": "/bin/ls"}, True),
    ("basename(t.path) = \"\"", {"path": "/bin/"}, True),
    ("basename(t.path) = ls", {"path": "ls"}, True),
    ("len(t.str) = 3", {"str": "abc"}, True),
    ("len(t.str) = 2", {"str": "é"}, True),  # bytes
    ("len(t.list) > 1", {"list": ["a", "b"]}, True),
    ("len(t.buf) = 2", {"buf": b"ab"}, True),
    ("toupper(basename(t.path)) = LS", {"path": "/bin/ls"}, True),
    ("concat(t.str, '-', t.str2) = a-b", {"str": "a", "str2": "b"}, True),
    ("concat(t.str, '-', t.str2) exists", {"str": "a"}, False),
    ("join(',', t.list) = 'a,b'", {"list": ["a", "b"]}, True),
    ("join(',', (t.str, 'x', t.str2)) = 'a,x,b'", {"str": "a", "str2": "b"}, True),
    ("join(',', (t.str, 'x', t.str2)) = 'a,x'", {"str": "a"}, True),
    ("concat((t.str, t.str2), 'x') = abx", {"str": "a", "str2": "b"}, True),
    ("getopt(t.str, 'ab:')[b] = x", {"str": "-a -b x rest"}, True),
    ("getopt(t.str, 'ab:')[a] = ''", {"str": "-a -b x"}, True),
    ("getopt(t.str, 'ab:')[b] exists", {"str": "-a"}, False),
    # val(): field-to-field
    ("t.str = val(t.str2)", {"str": "a", "str2": "a"}, True),
    ("t.str != val(t.str2)", {"str": "a", "str2": "b"}, True),
    ("t.str = val(t.str2)", {"str": "a"}, False),
    ("t.str != val(t.str2)", {"str": "a"}, False),
    ("t.u32 < val(t.u32b)", {"u32": 1, "u32b": 2}, True),
    ("t.str startswith val(t.str2)", {"str": "abc", "str2": "ab"}, True),
    ("t.str = tolower(t.str2)", {"str": "ab", "str2": "AB"}, True),
    ("t.path = val(t.str)", {"path": "/x", "str": "/x"}, True),  # string types are compatible
    ("t.list intersects val(t.list2)", {"list": ["a", "b"], "list2": ["b"]}, True),
    ("t.list in val(t.list2)", {"list": ["a", "b"], "list2": ["b"]}, False),
    ("t.anc = val(t.str)", {"anc": ["x", "y"], "str": "y"}, True),
    # inline templates
    ("t.inl = abc", {"str": "abc"}, True),
])
def test_operators(cond, values, expected):
    assert ev(cond, Evt(**values)) is expected


# -- missing values (§2.5, §8.4) -----------------------------------------------------------------

@pytest.mark.parametrize("cond", [
    "t.str = x", "t.str != x", "t.str contains x", "t.str icontains x", "t.str startswith x",
    "t.str endswith x", "t.str glob *", "t.str iglob *", "t.str regex '.*'", "t.str pmatch (/)",
    "t.str in (x)", "t.str intersects (x)", "t.str exists", "t.str < 1", "t.str > 1",
    "t.u32 = 1", "t.u32 != 1", "t.u32 < 1", "t.u32 >= 0", "t.bool = false", "t.bool != true",
    "t.ip = 1.2.3.4", "t.ip != 1.2.3.4", "t.net = 10.0.0.0/8", "t.net != 10.0.0.0/8",
    "t.buf bcontains 00", "t.list in (a)", "t.list intersects (a)", "t.list exists",
    "t.anc = a", "t.anc != a", "t.anc[1] != a", "t.str startswith anyof (x)", "t.str != allof (x)",
    "tolower(t.str) != x", "len(t.str) >= 0", "t.str = val(t.str2)",
])
def test_every_check_is_false_on_missing_and_not_inverts(cond):
    assert ev(cond, Evt()) is False
    assert ev(f"not {cond}", Evt()) is True
    assert ev(f"not not {cond}", Evt()) is False


def test_not_equal_differs_from_not_equal_on_missing():
    assert ev("t.str != bash", Evt()) is False
    assert ev("not t.str = bash", Evt()) is True


def test_short_circuit_and_order():
    e = Evt(str="a")
    assert ev("t.str = b and t.u32 = 1", e) is False
    assert "u32" not in e.calls
    e = Evt(str="a")
    assert ev("t.str = a or t.u32 = 1", e) is True
    assert "u32" not in e.calls


# -- type checking errors (§2.3, §2.8, §2.12) ------------------------------------------------------

@pytest.mark.parametrize("cond, message", [
    ("proc.nobody = cat", "filter_check called with nonexistent field proc.nobody"),
    ("t.str[1] = x", "filter_check called with nonexistent field t.str[1]"),
    ("t.u32 contains 5", "filter error: 'contains' operator not supported for numeric filters"),
    ("t.str bcontains 00", "filter error: 'bcontains' operator not supported for string filters"),
    ("t.bool < 1", "filter error: '<' operator not supported for boolean filters"),
    ("t.list bcontains 00", "filter error: 'bcontains' operator not supported for list filters"),
    ("t.ip contains 1", "filter error: 'contains' operator not supported for IP address filters"),
    ("t.u32 = 0x10", "0x10 is not a valid number"),
    ("t.u32 = abc", "abc is not a valid number"),
    ("t.u32 in (1, x)", "x is not a valid number"),
    ("t.u32 = 1.5", "1.5 is not a valid number"),
    ("t.dbl = 1.5", "1.5 is not a valid number"),
    ("t.port = nosuchservice", "nosuchservice is not a valid number"),
    ("t.bool = True", "filter error: unrecognized boolean value True"),
    ("t.bool = 1", "filter error: unrecognized boolean value 1"),
    ("t.ip = 10.0.0", "unrecognized IP address 10.0.0"),
    ("t.ip4 = ::1", "unrecognized IP address ::1"),
    ("t.net = 10.0.0.1", "unrecognized IP network 10.0.0.1"),
    ("t.buf bcontains xyz", "filter error: bcontains and bstartswith operator support hex strings only"),
    ("t.buf bcontains abc", "filter error: bcontains and bstartswith operator support hex strings only"),
    ("t.str regex '('", "invalid regex pattern: "),
    ("evt.type = nosuchevent", "unknown event type nosuchevent"),
    ("evt.type in (open, nosuch)", "unknown event type nosuch"),
    ("evt.type = val(t.str)", "filter error: right-hand side fields and transformers are not supported"),
    ("tolower(evt.type) = x", "filter error: transformer 'tolower' cannot be applied to field 'evt.type'"),
    ("tolower(t.noxf) = x", "cannot be applied to field 't.noxf'"),
    ("tolower(t.anc) = x", "cannot be applied to field 't.anc'"),
    ("tolower(t.u32) = x", "filter error: transformer 'tolower' is not supported on field type 'UINT32'"),
    ("t.str = val(t.u32)", "field 't.str' has type 'CHARBUF' while the right-hand side field 't.u32' has "
                           "incompatible type 'UINT32'"),
    ("t.str = val(t.list)", "has incompatible type 'CHARBUF list'"),
    ("t.str = val(t.norhs)", "cannot be used on the right-hand side"),
    ("t.str regex val(t.str2)", "'regex' operator not supported with right-hand side fields"),
    ("t.net = val(t.net)", "IP network fields cannot be compared"),
    ("t.req exists", "filter t.req requires an argument"),
    ("t.anc[x] = a", "invalid index x"),
    ("t.str = \"a\\x00b\"", "NUL"),
])
def test_compile_errors(cond, message):
    e = err(cond)
    assert message in e.message


def test_unknown_error_class():
    assert err("proc.nobody = cat").is_unknown
    assert err("evt.type = nosuch").is_unknown
    assert not err("t.u32 = abc").is_unknown
    assert err("evt.type = open and x.y = 1").position.col == 21


def test_value_parsing():
    assert parse_int("-1", "UINT64") == 2**64 - 1
    assert parse_int("4294967296", "UINT32") == 0
    assert parse_int("2147483648", "INT32") == -(2**31)
    assert parse_int("99999999999999999999", "INT64") == 2**63 - 1
    assert parse_int(" 7 ", "INT64") == 7
    assert parse_int("+7", "UINT16") == 7
    with pytest.raises(ValueError):
        parse_int("7a", "INT64")
    assert parse_value("ssh", "PORT", "=") == 22


# -- warnings (§2.13) ----------------------------------------------------------------------------

def test_warnings():
    w = check(parse("t.str = t.str2 and t.str regex 'abc' and t.str = 'tolower(t.str)' and t.old exists"),
              SOURCE).warnings
    msgs = [(x.code, x.message) for x in w]
    assert ("LOAD_COMPILE_CONDITION", "string 't.str2' may be a valid field misused as a const string value") in msgs
    assert any(c == "LOAD_COMPILE_CONDITION" and "regex" in m and "'='" in m for c, m in msgs)
    assert any(c == "LOAD_COMPILE_CONDITION" and "transformer" in m for c, m in msgs)
    dep = [x for x in w if x.code == "LOAD_DEPRECATED_ITEM"]
    assert dep and dep[0].deprecated_field == "t.old"
    assert check(parse("t.str regex 'a.*b'"), SOURCE).warnings == []
    w = check(parse("jevt.value[/a] = <NA>"), "k8s_audit").warnings
    assert [x.code for x in w] == ["LOAD_UNSAFE_NA_CHECK"]
    assert check(parse("jevt.value[/a] exists"), "k8s_audit").warnings == []


# -- code generation ------------------------------------------------------------------------------

def test_each_field_extracted_once_per_event_across_rules():
    rules = [(f"r{i}", parse(c), None) for i, c in enumerate([
        "t.str = a and t.u32 = 1", "t.str = b or t.u32 = 2", "t.str contains x and t.u32 > 3",
        "not t.str startswith y"])]
    e = build_evaluator(SOURCE, rules, "all")
    evt = Evt(str="c", u32=2)
    assert e(evt) == ["r1", "r3"]
    assert evt.calls == {"str": 1, "u32": 1}


def test_shared_macro_evaluated_once():
    macro = "(t.str startswith a and t.path glob '/x/*' and t.u32 > 1)"
    rules = [(f"r{i}", parse(c), None) for i, c in enumerate([
        f"{macro} and t.bool = true", f"{macro} and t.bool = false", f"not {macro}"])]
    e = build_evaluator(SOURCE, rules, "all")
    assert "m1" in e.source_code
    assert e(Evt(str="ab", path="/x/y", u32=2, bool=False)) == ["r1"]


def test_first_and_all_matching():
    rules = [("a", parse("t.str = x"), None), ("b", parse("t.str exists"), None), ("c", parse("t.u32 = 1"), None)]
    first = build_evaluator(SOURCE, rules, "first")
    every = build_evaluator(SOURCE, rules, "all")
    evt = Evt(str="x", u32=1)
    assert list(first(evt)) == ["a"]
    assert every(evt) == ["a", "b", "c"]
    assert list(first(Evt(u32=1))) == ["c"]
    assert list(first(Evt())) == []
    with pytest.raises(ValueError):
        build_evaluator(SOURCE, rules, "best")


def test_dispatch_on_code_and_folding():
    rules = [("opens", parse("evt.type in (open, close) and t.str = a"), {1, 2}),
             ("exec", parse("evt.type = execve"), {3}),
             ("any", parse("not evt.type = open and t.u32 = 1"), {1, 2, 3, 77})]
    e = build_evaluator(SOURCE, rules, "all")
    assert e(Evt(1, str="a", u32=1)) == ["opens"]
    assert e(Evt(2, str="a", u32=1)) == ["opens", "any"]
    assert e(Evt(3, u32=1)) == ["exec", "any"]
    assert list(e(Evt(77))) == []
    assert list(e(Evt(78, u32=1))) == []
    # evt.type was folded at build time: never extracted for the codes it is fixed for
    evt = Evt(1, str="a", u32=1)
    e(evt)
    assert "ev" not in evt.calls
    # codes whose folded rules are the same share a function
    rules2 = [("opens", parse("evt.type in (open, close) and t.str = a"), {1, 2})]
    fns = build_evaluator(SOURCE, rules2).functions()
    assert fns[1] == fns[2]


def test_folding_leaves_varying_codes_alone():
    rules = [("r", parse("evt.type = open"), {1, 99})]
    e = build_evaluator(SOURCE, rules, "first")
    assert list(e(Evt(1))) == ["r"]
    assert list(e(Evt(99, ev="open"))) == ["r"]
    assert list(e(Evt(99, ev="close"))) == []


def test_statically_true_and_false_rules():
    rules = [("never", parse("evt.type = close"), {1}), ("always", parse("evt.type = open"), {1}),
             ("late", parse("t.str exists"), {1})]
    e = build_evaluator(SOURCE, rules, "first")
    assert list(e(Evt(1))) == ["always"]
    assert "_r0" not in e.source_code.split("def _e0")[1]


def test_errors_in_extractors_do_not_escape():
    rules = [("r", parse("t.u32 > 1"), None)]
    e = build_evaluator(SOURCE, rules)
    assert list(e(Evt(u32="not a number"))) == []
    assert e.errors == 1 and isinstance(e.last_error, TypeError)


def test_deep_nesting_compiles():
    depth = 120
    cond = "(" * depth + "t.str = a and (t.u32 = 1 or " * 1 + "not t.bool = true" + ")" * 1 + ")" * depth
    text = "t.str = z"
    for i in range(depth):
        text = f"(t.u32 = {i} or ({text}) and not t.str = q{i})"
    e = build_evaluator(SOURCE, [("r", parse(text), None), ("s", parse(cond), None)], "all")
    assert e(Evt(str="z", u32=1000)) == ["r"]
    assert e(Evt(str="a", u32=1)) == ["r", "s"]


def test_generate_evaluator_for_callers_that_dispatch():
    rules = [(object(), check(parse(c), SOURCE)) for c in ("evt.type = open and t.str = a", "t.str = a")]
    fn = generate_evaluator(rules, first=False, code=2)
    assert fn(Evt(2, str="a")) == [rules[1][0]]
    assert "def _evaluate" in fn.source_code


def test_generated_code_is_readable():
    e = build_evaluator(SOURCE, [("Shell in container", parse("t.str in (bash, sh) and not t.u32 = 0"), None)])
    src = e.source_code
    assert "# rule Shell in container: (t.str in (bash, sh) and not t.u32 = 0)" in src
    assert "def evaluate(evt" in src


# -- output formats (§3.1, §3.2, §8.17) ----------------------------------------------------------

def test_output_render_and_fields():
    fmt = compile_output("user=%t.str %t.u32 hex=%t.hex b=%t.bool l=%t.list ip=%t.ip n=%t.str2 "
                         "low=%tolower(t.str) w=[%5t.str] %t.str_x %t.arg.flags%t.anc[1]", SOURCE)
    evt = Evt(str="Bob", u32=7, hex=255, bool=True, list=["a", "b"], ip=IP("10.0.0.1"),
              args={"flags": "O_RDONLY"}, anc=["a", "b"])
    assert fmt.render(evt) == ("user=Bob 7 hex=0xff b=true l=(a,b) ip=10.0.0.1 n=<NA> low=bob w=[Bob  ] "
                               "Bob_x O_RDONLYb")
    assert fmt.fields(evt) == {"t.anc[1]": "b", "t.arg.flags": "O_RDONLY", "t.bool": True, "t.hex": "0xff",
                               "t.ip": "10.0.0.1", "t.list": ["a", "b"], "t.str": "Bob", "t.str2": None,
                               "t.u32": 7}
    assert list(fmt.fields(evt)) == sorted(fmt.fields(evt))
    t = compile_output("%t.time", SOURCE)
    assert t.render(Evt(_ts=5)) == "T5" and t.fields(Evt(_ts=5)) == {"t.time": 5}
    assert compile_output("%3t.str|", SOURCE).render(Evt(str="abcdef")) == "abc|"


def test_output_without_star_is_empty_on_missing():
    fmt = compile_output("x=%t.str", SOURCE, rule_output=False)
    assert fmt.render(Evt()) == ""
    assert compile_output("*x=%t.str", SOURCE, rule_output=False).render(Evt()) == "x=<NA>"
    assert compile_output("**x", SOURCE).render(Evt()) == "**x"


@pytest.mark.parametrize("fmt, message", [
    ("a %proc.nobody b", "unknown filter: proc.nobody"),
    ("a % b", "unknown filter:  b"),
    ("end %", "formatting cannot end with a %"),
    ("%t.filteronly", "t.filteronly is filter only and cannot be used as a display field"),
    ("%tolower(t.u32)", "not supported on field type"),
])
def test_output_errors(fmt, message):
    with pytest.raises(CompileError) as e:
        compile_output(fmt, SOURCE)
    assert message in e.value.message
    if "unknown" in message:
        assert e.value.is_unknown


def test_builtin_per_code_values_of_evt_type_and_evt_dir():
    from tiercel.common import eventtable as et
    from tiercel.rules.condition.evttypes import per_code_of
    from tiercel.rules.fields.catalog import VARIES, Field

    def nothing(evt, arg):
        return None

    evt_type = per_code_of(Field("evt.type", "CHARBUF", "", "syscall", nothing))
    assert evt_type(et.PPME["PPME_SYSCALL_OPENAT_2_X"]) == "openat"
    assert evt_type(et.PPME_GENERIC_X) is VARIES
    evt_dir = per_code_of(Field("evt.dir", "CHARBUF", "", "syscall", nothing))
    assert (evt_dir(2), evt_dir(3)) == (">", "<")
    assert per_code_of(Field("evt.type", "CHARBUF", "", "k8s_audit", nothing)) is None
    own = Field("x.y", "CHARBUF", "", "syscall", nothing, per_code=lambda c: "z")
    assert per_code_of(own)(5) == "z"


def test_checks_against_empty_lists_fold_away():
    rules = [("r", parse("not t.str in () and t.u32 = 1 and not t.list intersects () and not t.path pmatch ()"),
              None), ("s", parse("t.str startswith anyof () or t.u32 = 2"), None)]
    e = build_evaluator(SOURCE, rules, "all")
    evt = Evt(u32=1)
    assert e(evt) == ["r"]
    assert set(evt.calls) == {"u32"}
    assert e(Evt(u32=2)) == ["s"]
