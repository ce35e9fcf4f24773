"""The Falco condition language: text -> tree -> checked tree -> generated Python -> evaluator.

Shaped like Jinja2's compiler: a lexer (`lexer`), a parser (`parser`) producing an immutable AST
(`nodes`), printers (`printer`), tree passes (`macros`, `evttypes`, `checker`), a code generator
(`codegen`) whose Python source is `compile()`d into one function per source and event code.

Pipeline, as the rules loader drives it for one rule (spec §1.9):

    from tiercel.rules import condition as cond

    text, used_lists = cond.substitute_lists(text, lists)       # §2.9, textual, before parsing
    tree = cond.parse(text)                                     # ParseError
    tree, used_macros = cond.expand_macros(tree, lookup)        # MacroError; lookup(name) -> tree|None
    cond.to_string(tree)                                        # Falco's `condition_compiled`

Errors carry Falco's message and `position` (`errors.Position`: 0-based byte offset, 1-based
line and column, relative to the condition text) and map to load-result codes:
`ParseError` -> LOAD_ERR_COMPILE_CONDITION, `MacroError` -> LOAD_ERR_VALIDATE,
`CompileError` -> LOAD_ERR_COMPILE_CONDITION (`.is_unknown` for skip-if-unknown-filter).
"""

from tiercel.rules.condition.errors import (
    CompileError,
    ConditionError,
    MacroError,
    ParseError,
    Position,
    is_unknown_error,
)
from tiercel.rules.condition.lists import quote_item, substitute_list, substitute_lists
from tiercel.rules.condition.macros import expand_macros
from tiercel.rules.condition.nodes import (
    AndExpr,
    BinaryCheck,
    FieldExpr,
    Identifier,
    ListValue,
    Node,
    NotExpr,
    OrExpr,
    TransformerExpr,
    TransformerList,
    UnaryCheck,
    Value,
    fields_of,
    identifiers_of,
    walk,
)
from tiercel.rules.condition.parser import MAX_DEPTH, parse, parse_field
from tiercel.rules.condition.printer import to_source, to_string

__all__ = [
    "MAX_DEPTH", "AndExpr", "BinaryCheck", "CompileError", "ConditionError", "FieldExpr", "Identifier",
    "ListValue", "MacroError", "Node", "NotExpr", "OrExpr", "ParseError", "Position", "TransformerExpr",
    "TransformerList", "UnaryCheck", "Value", "expand_macros", "fields_of", "identifiers_of",
    "is_unknown_error", "parse", "parse_field", "quote_item", "substitute_list", "substitute_lists",
    "to_source", "to_string", "walk",
]
