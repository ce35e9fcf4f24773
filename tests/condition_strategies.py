"""Hypothesis strategies for condition trees (shared by the property tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from tiercel.rules.condition import lexer as lx
from tiercel.rules.condition import nodes as n
from tiercel.rules.condition.parser import LIST_OPS, NUM_OPS, STR_OPS

_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\udcff\udc80 ,()\"'\\"),
                 max_size=8)
_idents = st.from_regex(r"[a-zA-Z]{1,4}[a-zA-Z0-9_]{0,3}", fullmatch=True).filter(
    lambda s: s not in ("and", "or", "not"))
_field_names = st.sampled_from(["proc.name", "evt.type", "fd.name", "proc.aname", "a.b", "x.y_1.z2"]) | \
    st.from_regex(r"[a-z]{1,4}(\.[a-z][a-z0-9_]{0,3}){1,2}", fullmatch=True)
_numbers = st.from_regex(lx.NUMBER, fullmatch=True) | st.from_regex(lx.HEX_NUMBER, fullmatch=True)

fields = st.builds(n.FieldExpr, _field_names, st.none() | _texts.filter(bool))


def _transformers(inner):
    single = st.builds(lambda name, a: n.TransformerExpr(name, (a,)),
                       st.sampled_from(["tolower", "toupper", "b64", "basename", "len"]), inner)
    targ = inner | st.builds(n.Value, _texts | _numbers)
    multi = st.builds(lambda name, args, arg: n.TransformerExpr(name, tuple(args), arg),
                      st.sampled_from(["join", "concat", "getopt"]),
                      st.lists(targ | st.builds(lambda xs: n.TransformerList(tuple(xs)), st.lists(targ, max_size=3)),
                               min_size=1, max_size=3),
                      st.none() | _texts.filter(bool))
    return single | multi


lhs = st.recursive(fields, _transformers, max_leaves=3)
rhs_transformers = st.builds(lambda f: n.TransformerExpr("val", (f,)), fields) | \
    lhs.filter(lambda x: isinstance(x, n.TransformerExpr))

_lists = st.builds(lambda xs: n.ListValue(tuple(xs)), st.lists(_texts, max_size=4))


def _check(left, kind, op, strv, numv, listv, ident, modifier, rhs_t, use_t):
    if kind == "unary":
        return n.UnaryCheck(left, "exists")
    if kind == "num":
        return n.BinaryCheck(left, NUM_OPS[op % len(NUM_OPS)], rhs_t if use_t else n.Value(numv))
    if kind == "str":
        o = STR_OPS[op % len(STR_OPS)]
        if modifier:
            return n.BinaryCheck(left, o, listv if not ident else n.Value(ident), modifier)
        return n.BinaryCheck(left, o, rhs_t if use_t else n.Value(strv))
    o = LIST_OPS[op % len(LIST_OPS)]
    if use_t:
        return n.BinaryCheck(left, o, rhs_t)
    return n.BinaryCheck(left, o, n.Value(ident) if ident else listv)


checks = st.builds(_check, lhs, st.sampled_from(["unary", "num", "str", "list"]), st.integers(0, 20),
                   _texts, _numbers, _lists, st.none() | _idents,
                   st.none() | st.sampled_from(["oneof", "anyof", "allof"]), rhs_transformers, st.booleans())


def _bool(children):
    return (st.builds(lambda xs: n.AndExpr(tuple(xs)), st.lists(children, min_size=2, max_size=3))
            | st.builds(lambda xs: n.OrExpr(tuple(xs)), st.lists(children, min_size=2, max_size=3))
            | st.builds(n.NotExpr, children))


conditions = st.recursive(checks | st.builds(n.Identifier, _idents), _bool, max_leaves=8)


# ---------------------------------------------------------------------------------------------
# Conditions that compile on the test source (tests/condition_fields.py), with values drawn from
# small pools so that checks match often, and events drawn from the same pools.

STR_POOL = ["a", "ab", "b", "ba", "A", "", "/a/b"]
PATH_POOL = ["/a", "/a/b", "/ab", "/b/a", "/"]
GLOBS = ["a*", "*b", "?", "[ab]*", "/a/*", "*", "[!a]*"]
REGEXES = ["a.*", "b", "(a|b)+", ".*"]
PMATCH = ["/a", "/", "/a/b", "/*/a", "/b"]
U32_TEXT = ["0", "1", "2", "-1", "4294967295"]
U32_POOL = [0, 1, 2, 4294967295]
LIST_POOL = ["a", "b", "c"]

_str_ops = ["=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "startswith", "endswith"]
_q = lambda s: '"' + s + '"'  # noqa: E731 - pool values have no quotes or backslashes


def _typed_check(draw):
    kind = draw(st.sampled_from(["str", "path", "u32", "bool", "ip", "net", "list", "anc", "ev", "val",
                                 "transform"]))
    if kind == "str":
        f = draw(st.sampled_from(["t.str", "t.str2", "t.anc[0]", "t.anc[1]"]))
        which = draw(st.sampled_from(["op", "set", "mod", "glob", "regex", "exists"]))
        if which == "op":
            op = draw(st.sampled_from(_str_ops))
            if op in ("<", "<=", ">", ">="):
                return f"{f} {op} {draw(st.sampled_from(['1', '5', '0']))}"
            return f"{f} {op} {_q(draw(st.sampled_from(STR_POOL)))}"
        if which == "set":
            op = draw(st.sampled_from(["in", "intersects"]))
            return f"{f} {op} ({', '.join(map(_q, draw(st.lists(st.sampled_from(STR_POOL), max_size=3))))})"
        if which == "mod":
            op = draw(st.sampled_from(["=", "!=", "startswith", "endswith", "contains", "icontains", "glob"]))
            mod = draw(st.sampled_from(["oneof", "anyof", "allof"]))
            pool = GLOBS if op == "glob" else STR_POOL
            return f"{f} {op} {mod} ({', '.join(map(_q, draw(st.lists(st.sampled_from(pool), max_size=3))))})"
        if which == "glob":
            return f"{f} {draw(st.sampled_from(['glob', 'iglob']))} {_q(draw(st.sampled_from(GLOBS)))}"
        if which == "regex":
            return f"{f} regex {_q(draw(st.sampled_from(REGEXES)))}"
        return f"{f} exists"
    if kind == "path":
        which = draw(st.sampled_from(["pmatch", "glob", "eq"]))
        if which == "pmatch":
            return f"t.path pmatch ({', '.join(draw(st.lists(st.sampled_from(PMATCH), min_size=1, max_size=3)))})"
        if which == "glob":
            return f"t.path glob {_q(draw(st.sampled_from(GLOBS)))}"
        return f"t.path {draw(st.sampled_from(['=', '!=', 'startswith']))} {draw(st.sampled_from(PATH_POOL))}"
    if kind == "u32":
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "exists"]))
        if op == "exists":
            return "t.u32 exists"
        if op == "in":
            return f"t.u32 in ({', '.join(draw(st.lists(st.sampled_from(U32_TEXT), max_size=3)))})"
        return f"t.u32 {op} {draw(st.sampled_from(U32_TEXT))}"
    if kind == "bool":
        return f"t.bool {draw(st.sampled_from(['=', '!=']))} {draw(st.sampled_from(['true', 'false']))}"
    if kind == "ip":
        return f"t.ip {draw(st.sampled_from(['=', '!=']))} {draw(st.sampled_from(['10.0.0.1', '::1']))}"
    if kind == "net":
        return f"t.net {draw(st.sampled_from(['=', '!=']))} {draw(st.sampled_from(['10.0.0.0/8', '10.0.0.0/31']))}"
    if kind == "list":
        op = draw(st.sampled_from(["in", "intersects", "exists", "=", "!=", "startswith"]))
        if op == "exists":
            return "t.list exists"
        if op in ("=", "!=", "startswith"):
            return f"t.list {op} {draw(st.sampled_from(LIST_POOL))}"
        return f"t.list {op} ({', '.join(draw(st.lists(st.sampled_from(LIST_POOL), max_size=3)))})"
    if kind == "anc":
        op = draw(st.sampled_from(["=", "!=", "in", "startswith", "exists"]))
        if op == "exists":
            return "t.anc exists"
        if op == "in":
            return f"t.anc in ({', '.join(draw(st.lists(st.sampled_from(LIST_POOL), max_size=3)))})"
        return f"t.anc {op} {draw(st.sampled_from(LIST_POOL))}"
    if kind == "ev":
        f = draw(st.sampled_from(["evt.type", "t.ev"]))
        op = draw(st.sampled_from(["=", "!=", "in"]))
        if op == "in":
            return f"{f} in ({', '.join(draw(st.lists(st.sampled_from(['open', 'close', 'execve']), max_size=3)))})"
        return f"{f} {op} {draw(st.sampled_from(['open', 'close', 'execve']))}"
    if kind == "val":
        return draw(st.sampled_from([
            "t.str = val(t.str2)", "t.str != val(t.str2)", "t.str startswith val(t.str2)",
            "t.u32 < val(t.u32b)", "t.u32 = val(t.u32b)", "t.list intersects val(t.list2)",
            "t.list in val(t.list2)", "t.anc = val(t.str)", "t.str contains val(t.str2)"]))
    return draw(st.sampled_from([
        f"tolower(t.str) = {_q(draw(st.sampled_from(STR_POOL)))}", "toupper(t.str) = A",
        f"len(t.str) {draw(st.sampled_from(['=', '>', '<']))} {draw(st.sampled_from(['0', '1', '2']))}",
        "len(t.list) >= 2", f"basename(t.path) = {draw(st.sampled_from(['a', 'b', '']))!r}",
        "tolower(t.list) intersects (a)", "t.str = tolower(t.str2)"]))


@st.composite
def typed_condition_texts(draw, pool_size=6):
    """A condition text combining checks (drawn from a small per-example pool, so sub-conditions
    repeat) with and/or/not and parentheses."""
    pool = [_typed_check(draw) for _ in range(draw(st.integers(1, pool_size)))]

    def expr(depth):
        if depth > 3 or draw(st.integers(0, 2)) == 0:
            leaf = draw(st.sampled_from(pool))
            return f"not {leaf}" if draw(st.booleans()) else leaf
        word = draw(st.sampled_from([" and ", " or "]))
        parts = [expr(depth + 1) for _ in range(draw(st.integers(2, 3)))]
        s = "(" + word.join(parts) + ")"
        return f"not {s}" if draw(st.integers(0, 3)) == 0 else s

    return expr(0)


@st.composite
def sample_events(draw):
    from tests.condition_fields import Evt

    def maybe(strategy):
        return draw(st.none() | strategy)

    values = {
        "str": maybe(st.sampled_from(STR_POOL)), "str2": maybe(st.sampled_from(STR_POOL)),
        "path": maybe(st.sampled_from(PATH_POOL)), "u32": maybe(st.sampled_from(U32_POOL)),
        "u32b": maybe(st.sampled_from(U32_POOL)), "bool": maybe(st.booleans()),
        "ip": maybe(st.sampled_from(["10.0.0.1", "10.0.0.2", "::1"]).map(__import__("ipaddress").ip_address)),
        "net": maybe(st.sampled_from(["10.0.0.1", "11.0.0.1", "::1"]).map(__import__("ipaddress").ip_address)),
        "list": maybe(st.lists(st.sampled_from(LIST_POOL), max_size=3)),
        "list2": maybe(st.lists(st.sampled_from(LIST_POOL), max_size=3)),
        "anc": maybe(st.lists(st.sampled_from(LIST_POOL), max_size=4)),
        "ev": maybe(st.sampled_from(["open", "close", "execve"])),
    }
    code = draw(st.sampled_from([1, 2, 3, 99]))
    return Evt(code, **{k: v for k, v in values.items() if v is not None})
