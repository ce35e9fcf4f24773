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
    checked = cond.check(tree, source)                          # CompileError; .warnings, .evttypes
    codes = cond.rule_event_codes(tree, source)                 # what the ruleset indexes it under
    fmt = cond.compile_output(output, source)                   # CompileError; .render(evt), .fields(evt)

and for a whole source, once every rule is compiled (rules in index order):

    ev = cond.build_evaluator(source, [(rule_id, checked, codes), ...], matching="first")
    ev(evt)                                                     # -> rule ids matching, in order
    print(ev.source_code)                                       # the generated Python

`tiercel condition` (cli.py) parses, checks and prints the generated code of a condition.

Errors carry Falco's message and `position` (`errors.Position`: 0-based byte offset, 1-based
line and column, relative to the condition text) and map to load-result codes:
`ParseError` -> LOAD_ERR_COMPILE_CONDITION, `MacroError` -> LOAD_ERR_VALIDATE,
`CompileError` -> LOAD_ERR_COMPILE_CONDITION (`.is_unknown` for skip-if-unknown-filter).
"""

from tiercel.rules.condition.checker import Checked, Warning, check, check_field, is_field
from tiercel.rules.condition.errors import (
    CompileError,
    ConditionError,
    MacroError,
    ParseError,
    Position,
    is_unknown_error,
)
from tiercel.rules.condition.evaluator import Evaluator, build_evaluator, generate_evaluator
from tiercel.rules.condition.evttypes import (
    codes_for_name,
    event_codes,
    event_names,
    is_event_type,
    rule_event_codes,
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
from tiercel.rules.condition.output import OutputFormat, compile_output, evt_time, evt_time_iso8601
from tiercel.rules.condition.parser import MAX_DEPTH, parse, parse_field
from tiercel.rules.condition.printer import to_source, to_string

check_condition = check  # the name the loader uses

__all__ = [
    "MAX_DEPTH", "AndExpr", "BinaryCheck", "Checked", "CompileError", "ConditionError", "Evaluator",
    "FieldExpr", "Identifier", "ListValue", "MacroError", "Node", "NotExpr", "OrExpr", "OutputFormat",
    "ParseError", "Position", "TransformerExpr", "TransformerList", "UnaryCheck", "Value", "Warning",
    "build_evaluator", "check", "check_condition", "check_field", "codes_for_name", "compile_output",
    "event_codes", "event_names", "evt_time", "evt_time_iso8601", "expand_macros", "fields_of",
    "generate_evaluator", "identifiers_of", "is_event_type", "is_field", "is_unknown_error", "parse",
    "parse_field", "quote_item", "rule_event_codes", "substitute_list", "substitute_lists", "to_source",
    "to_string", "walk",
]
