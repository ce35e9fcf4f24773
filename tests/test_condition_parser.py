"""The condition parser, printers, list substitution and macro expansion (spec §2.1-2.2, §2.9,
§2.10, §2.14 and the quirks of §8)."""

from __future__ import annotations

import pytest

from tiercel.rules.condition import (
    AndExpr,
    BinaryCheck,
    FieldExpr,
    Identifier,
    ListValue,
    MacroError,
    NotExpr,
    OrExpr,
    ParseError,
    TransformerExpr,
    TransformerList,
    UnaryCheck,
    Value,
    expand_macros,
    parse,
    parse_field,
    quote_item,
    substitute_lists,
    to_source,
    to_string,
)


def compiled(text: str) -> str:
    return to_string(parse(text))


def err(text: str) -> ParseError:
    with pytest.raises(ParseError) as e:
        parse(text)
    return e.value


# -- structure and precedence ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("evt.type = open", "evt.type = open"),
    ("evt.type=open and proc.name=cat", "(evt.type = open and proc.name = cat)"),
    ("a or b and c", "(a or (b and c))"),
    ("not a and b", "(not a and b)"),
    ("not (a and b)", "not (a and b)"),
    ("not not a", "a"),
    ("not not not a", "not a"),
    ("not(a) or b", "(not a or b)"),
    ("a and(b) or c", "((a and b) or c)"),
    ("a or(b)", "(a or b)"),
    ("((a))", "a"),
    ("a and (b and c)", "(a and (b and c))"),
    ("evt.type in(open,close)", "evt.type in (open, close)"),
    ("evt.type in ()", "evt.type in ()"),
    ("evt.type in ( )", "evt.type in ()"),
    ("x.y in foo", "x.y in foo"),
    ("proc.name exists", "proc.name exists"),
    ("(proc.name exists)", "proc.name exists"),
    ("evt.num>=0", "evt.num >= 0"),
    ("evt.num < 0x10", "evt.num < 0x10"),
    ("evt.num <= -1.5e+3", "evt.num <= -1.5e+3"),
    ("proc.pid = 0x10", "proc.pid = 0x10"),
    ("proc.name == bash", "proc.name == bash"),
    ("proc.name != bash", "proc.name != bash"),
    ("not proc.name startswith oneof (sshd, sudo, systemd) and evt.type = open",
     "(not proc.name startswith oneof (sshd, sudo, systemd) and evt.type = open)"),
    ("proc.name = oneof", "proc.name = oneof"),
    ("proc.name = oneof and a", "(proc.name = oneof and a)"),
    ("proc.name = anyof foo", "proc.name = anyof foo"),
    ("proc.cmdline contains \"a b\"", "proc.cmdline contains \"a b\""),
    ("proc.name = runc:[0:PARENT]", "proc.name = runc:[0:PARENT]"),
    ("fd.name glob /etc/*", "fd.name glob /etc/*"),
    ("proc.aname[2]=bash", "proc.aname[2] = bash"),
    ("jevt.value[/requestObject/spec/tls] exists", "jevt.value[/requestObject/spec/tls] exists"),
    ("jevt.value[\"/a b\"] exists", "jevt.value[/a b] exists"),
    ("evt.arg.flags contains O_TRUNC", "evt.arg.flags contains O_TRUNC"),
    ("tolower(proc.name) = bash", "tolower(proc.name) = bash"),
    ("toupper(basename(fd.name)) = X", "toupper(basename(fd.name)) = X"),
    ("proc.name = val(proc.pname)", "proc.name = val(proc.pname)"),
    ("proc.name = tolower(proc.pname)", "proc.name = tolower(proc.pname)"),
    ("len(proc.args) > 5", "len(proc.args) > 5"),
    ("concat(proc.name, \"-\", 5) = a", "concat(proc.name, -, 5) = a"),
    ("join(\",\", (proc.name, proc.pname)) = a", "join(,, (proc.name, proc.pname)) = a"),
    ("getopt(proc.args, \"p:\")[p] = 1", "getopt(proc.args, p:)[p] = 1"),
    ("proc.name=\"\"", "proc.name = "),
    ("a\tand\nb", "(a and b)"),
])
def test_condition_compiled(text, expected):
    assert compiled(text) == expected


def test_tree_shapes():
    t = parse("evt.type in (open, openat) and not proc.name = cat or m")
    assert isinstance(t, OrExpr) and isinstance(t.children[0], AndExpr)
    a = t.children[0]
    assert a.children[0] == BinaryCheck(FieldExpr("evt.type"), "in", ListValue(("open", "openat")))
    assert a.children[1] == NotExpr(BinaryCheck(FieldExpr("proc.name"), "=", Value("cat")))
    assert t.children[1] == Identifier("m")
    assert parse("x.y exists") == UnaryCheck(FieldExpr("x.y"), "exists")
    f = parse("proc.aname[1] = a").left
    assert (f.name, f.arg, f.text) == ("proc.aname", "1", "proc.aname[1]")
    # a dotted remainder stays part of the field name: the catalog resolves it (evt.arg.<name>)
    assert parse("evt.arg.flags exists").left == FieldExpr("evt.arg.flags")
    v = parse("a.b = val(c.d)").right
    assert v == TransformerExpr("val", (FieldExpr("c.d"),))
    c = parse("concat(a.b, \"x\", (c.d, 'e')) = z").left
    assert c.args == (FieldExpr("a.b"), Value("x"), TransformerList((FieldExpr("c.d"), Value("e"))))
    m = parse("a.b startswith allof (x, y)")
    assert (m.op, m.modifier, m.right) == ("startswith", "allof", ListValue(("x", "y")))


def test_numbers_are_strings_except_after_numeric_operators():
    assert parse("proc.pid = 10").right == Value("10")
    assert parse("proc.pid in (1, 0x2, -3)").right == ListValue(("1", "0x2", "-3"))
    assert parse("proc.pid < +10.5").right == Value("+10.5")
    e = err("proc.pid < abc")
    assert e.message == "expected a number value"


# -- lexical quirks (§2.1, §8.11, §8.12) ----------------------------------------------------------

def test_quoted_string_escapes():
    assert parse(r'a.b = "x\ty\n\\\/"').right.value == "x\ty\n\\/"
    assert parse(r'a.b = "\x41\x42"').right.value == "AB"
    assert parse(r"a.b = 'it\'s'").right.value == "it's"
    assert parse(r'a.b = "say \"hi\""').right.value == 'say "hi"'
    assert parse(r'a.b = "\xc3\xa9"').right.value == "é"
    assert parse(r'a.b = "\xff"').right.value.encode("utf-8", "surrogateescape") == b"\xff"
    # legacy: backslash-space is one backslash, the space is dropped
    assert parse(r'a.b = "a\ b"').right.value == "a\\b"


@pytest.mark.parametrize("text", [r"a.b = 'x\"'", r'a.b = "x\'"', r'a.b = "\q"', r'a.b = "\x4"',
                                  r'a.b = "\xZZ"'])
def test_bad_escapes(text):
    assert "unsupported string escape sequence" in err(text).message


def test_quote_preceded_by_backslash_does_not_close():
    # "a\\" does not end at its last quote: the string is unterminated
    assert err(r'a.b = "a\\"').message == "expected a string value"
    assert parse(r'a.b = "a\\" x"').right.value == 'a\\" x'


def test_word_operators_need_a_blank():
    e = err('fd.name startswith"/x"')
    assert e.message.startswith("expected a valid check operator: one of exists, <=, <, >=, >, ==, =, !=")
    assert compiled("fd.name startswith\t'/x'") == "fd.name startswith /x"
    assert compiled("fd.name=/x") == "fd.name = /x"
    assert compiled("fd.name pmatch(/x)") == "fd.name pmatch (/x)"


def test_keywords_are_lowercase():
    e = err("a AND b")
    assert e.message == "unexpected token after 'a', expecting 'or', 'and'"
    assert parse("notable or andy") == OrExpr((Identifier("notable"), Identifier("andy")))
    assert err("a andb").message == "unexpected token after 'a', expecting 'or', 'and'"


def test_bare_strings():
    assert parse("a.b = -1").right.value == "-1"
    assert parse("a.b = E").right.value == "E"
    assert err("a.b = ").message == "expected a string value"
    assert err("a.b in (x, )").message == "expected a string value"
    assert err("a.b in (x y)").message == "expected a ')' token"


# -- errors and positions ------------------------------------------------------------------------

def test_error_messages_and_positions():
    e = err("evt.type=open and foo bar")
    assert e.message == "unexpected token after 'foo', expecting 'or', 'and'"
    assert (e.position.offset, e.position.line, e.position.col) == (22, 1, 23)
    e = err("evt.type=execve foo")
    assert e.message == "unexpected token after 'execve', expecting 'or', 'and'"
    e = err("evt.type in (a, b) x")
    assert e.message == "unexpected token after ')', expecting 'or', 'and'"
    e = err("a and\n  (b or c")
    assert e.message == "expected a ')' token"
    assert (e.position.line, e.position.col, e.position.offset) == (2, 10, 15)
    assert err("").message == "filter input string is empty"
    assert err(")").message == "expected a '(' token, a field check, or an identifier"
    assert err("a.b[] = 1").message.startswith("expected a valid field argument")
    assert err("a.b[x = 1").message == "expected a ']' token"
    assert err("a.b in 5").message == "expected a list value or an identifier"


def test_positions_count_bytes():
    e = err('a.b = "é" c')
    assert (e.position.offset, e.position.col) == (11, 12)


def test_max_depth():
    ok = "(" * 200 + "a" + ")" * 200
    assert parse(ok) == Identifier("a")
    e = err("(" * 400 + "a" + ")" * 400)
    assert e.message == "exceeded max depth limit of 1000"


def test_parse_field():
    assert parse_field("proc.aname[2]") == FieldExpr("proc.aname", "2")
    assert parse_field("tolower(proc.name)") == TransformerExpr("tolower", (FieldExpr("proc.name"),))
    with pytest.raises(ParseError):
        parse_field("proc.name x")


# -- round trip ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "evt.type in (open, openat) and not (proc.name = cat or proc.name = \"a b\")",
    "not (not a)", "a and (b and c) or (d or e)", 'x.y = "a\\x5cb" and z.w = "q\\"uote"',
    "x.y = \"\" or x.y in (\"\", \"(x)\", \"a,b\")", "x.y = \"oneof\"", "x.y[\"a b\"] = c",
    "concat(a.b, \"x\", 5, (c.d, \"e\"))[1] = val(f.g)", "x.y pmatch (/a, /b/*)",
    "x.y in (\"\", \"\\x08\")", "x.y = \"\\x08a\"",
])
def test_round_trip(text):
    t = parse(text)
    assert parse(to_source(t)) == t


# -- list substitution (§2.9, §8.1, §8.2) -------------------------------------------------------

def test_list_substitution():
    lists = [("shells", ["bash", "sh"]), ("empty", []), ("spaced", ["a b", "'c d'"])]
    sub = lambda s: substitute_lists(s, lists)[0]  # noqa: E731
    assert compiled(sub("proc.name in (shells)")) == "proc.name in (bash, sh)"
    assert compiled(sub("proc.name in (ls, shells, cat)")) == "proc.name in (ls, bash, sh, cat)"
    assert compiled(sub("proc.name in (empty)")) == "proc.name in ()"
    assert compiled(sub("proc.name in (ls, empty)")) == "proc.name in (ls)"
    assert compiled(sub("proc.name in (empty, ls)")) == "proc.name in (ls)"
    assert compiled(sub("proc.name in (spaced)")) == 'proc.name in ("a b", "c d")'
    # not a token: no substitution
    assert sub("proc.name in (shellsx, xshells)") == "proc.name in (shellsx, xshells)"
    assert sub("shells.x = 1") == "shells.x = 1"
    # a bare name after an operator is substituted too, which breaks with several items
    assert sub("proc.name=shells") == "proc.name= bash, sh "
    with pytest.raises(ParseError):
        parse(sub("proc.name in shells"))
    # and inside a quoted string when the delimiters line up
    assert sub('proc.name = "(shells)"') == 'proc.name = "( bash, sh )"'
    assert substitute_lists("a in (x)", lists)[1] == []
    assert substitute_lists("a in (shells, empty)", lists)[1] == ["shells", "empty"]


def test_list_substitution_of_one_item_bare_list():
    assert compiled(substitute_lists("proc.name in cat_binaries", [("cat_binaries", ["cat"])])[0]) \
        == "proc.name in cat"


def test_quote_item():
    assert quote_item("a b") == '"a b"'
    assert quote_item('"a b"') == '"a b"'
    assert quote_item("'a b'") == "'a b'"
    assert quote_item("a\tb") == "a\tb"
    assert quote_item("(systemd)") == "(systemd)"


# -- macros (§2.10) --------------------------------------------------------------------------------

def test_macro_expansion():
    macros = {"m1": parse("proc.name = cat"), "m2": parse("m1 and evt.type = open"),
              "m3": parse("not m2 or m1")}
    t, used = expand_macros(parse("m3 and x.y exists"), macros.get)
    assert to_string(t) == "((not (proc.name = cat and evt.type = open) or proc.name = cat) and x.y exists)"
    assert used == ["m3", "m2", "m1"]
    # shared, immutable: the two copies of m1 are equal
    inner = t.children[0]
    assert inner.children[0].child.children[0] == inner.children[1]


def test_undefined_macro():
    with pytest.raises(MacroError) as e:
        expand_macros(parse("a.b = 1 and\n foo"), {}.get)
    assert e.value.message == "Undefined macro 'foo' used in filter."
    assert (e.value.position.line, e.value.position.col) == (2, 2)


def test_macro_loop():
    # the conformance case: macro_a redefined after macro_b, each referencing the other
    macros = {"macro_a": parse("macro_b"), "macro_b": parse("macro_a")}
    with pytest.raises(MacroError) as e:
        expand_macros(parse("macro_b"), macros.get)
    assert e.value.message.startswith("reference loop in macro '")
    # a loop wins over an undefined macro met before it
    with pytest.raises(MacroError) as e:
        expand_macros(parse("undefined_one or macro_a"), macros.get)
    assert "reference loop" in e.value.message
    with pytest.raises(MacroError) as e:
        expand_macros(parse("m"), {"m": parse("a.b = 1 or m")}.get)
    assert e.value.message == "reference loop in macro 'm'"
