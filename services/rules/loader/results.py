"""Load results: Falco's error/warning codes, the context chain of each problem, and the two
renderings Falco prints for `-V` (text and JSON).

A problem's context is a chain of locations from the outermost ("rules content" of a file) to the
innermost (a condition expression); each location is an item type, an item name and a YAML
position (0-based line/column/offset, as yaml-cpp marks). The snippet shows the source line of the
innermost location with a caret under its column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Error codes in Falco's enum order: (code, short string). Falco's JSON `codedesc` for errors is
# the short string (error_desc() returns error_strings, an upstream quirk kept here).
ERRORS: dict[str, str] = {
    "LOAD_ERR_FILE_READ": "File read error",
    "LOAD_ERR_YAML_PARSE": "YAML parse error",
    "LOAD_ERR_YAML_VALIDATE": "Error validating internal structure of YAML file",
    "LOAD_ERR_COMPILE_CONDITION": "Error compiling condition",
    "LOAD_ERR_COMPILE_OUTPUT": "Error compiling output",
    "LOAD_ERR_VALIDATE": "Error validating rule/macro/list/exception objects",
    "LOAD_ERR_EXTENSION": "Error in extension item",
}

# Warning codes in Falco's enum order: (short string, long description). The enum member for
# unknown fields is LOAD_UNKNOWN_FILTER; its printed code is LOAD_UNKNOWN_FIELD.
WARNINGS: dict[str, tuple[str, str]] = {
    "LOAD_UNKNOWN_SOURCE": (
        "Unknown event source",
        "A rule has a unknown event source. This can occur when reading rules content without having "
        "a corresponding plugin loaded, etc. The rule will be silently ignored."),
    "LOAD_UNSAFE_NA_CHECK": (
        "Unsafe <NA> comparison in condition",
        "Comparing a field value with <NA> is unsafe and can lead to unpredictable behavior of the rule "
        "condition. If you need to check for the existence of a field, consider using the 'exists' "
        "operator instead."),
    "LOAD_NO_EVTTYPE": (
        "Condition has no event-type restriction",
        "A rule condition matches too many evt.type values. This has a significant performance "
        "penalty. Make the condition more specific by adding an evt.type field or further restricting "
        "the number of evt.type values in the condition."),
    "LOAD_UNKNOWN_FIELD": (
        "Unknown field or event-type in condition or output",
        "A rule condition or output refers to a field or evt.type that does not exist. This is "
        "normally an error, but if a rule has a skip-if-unknown-filter property, the error is "
        "downgraded to a warning."),
    "LOAD_UNUSED_MACRO": (
        "Unused macro",
        "A macro is defined in the rules content but is not used by any other macro or rule."),
    "LOAD_UNUSED_LIST": (
        "Unused list",
        "A list is defined in the rules content but is not used by any other list, macro, or rule."),
    "LOAD_UNKNOWN_ITEM": (
        "Unknown rules file item",
        "An unknown top-level object is in the rules content. It will be ignored."),
    "LOAD_DEPRECATED_ITEM": (
        "Used deprecated item",
        "A deprecated item is employed by lists, macros, or rules."),
    "LOAD_WARNING_EXTENSION": (
        "Warning in extension item",
        "An extension item has a warning"),
    "LOAD_APPEND_NO_VALUES": (
        "Overriding/appending with no values",
        "A rule exception is overriding/appending with no values"),
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": (
        "Multiple exceptions defined with the same name",
        "A rule is defining multiple exceptions with the same name"),
    "LOAD_INVALID_MACRO_NAME": (
        "Invalid macro name",
        "A macro is defined with an invalid name"),
    "LOAD_INVALID_LIST_NAME": (
        "Invalid list name",
        "A list is defined with an invalid name"),
    "LOAD_COMPILE_CONDITION": (
        "Warning in rule condition",
        "A rule condition or output have been parsed with a warning"),
    "LOAD_UNKNOWN_KEY": (
        "Unknown key in item definition",
        "An unknown key has been found in a rule, macro, list or engine-version definition. "
        "The key will be ignored."),
}
LOAD_UNKNOWN_FILTER = "LOAD_UNKNOWN_FIELD"

# Item types of context locations (rule_loader::context::item_type, as printed).
VALUE_FOR = "value for"
EXCEPTIONS = "exceptions"
EXCEPTION = "exception"
EXCEPTION_VALUES = "exception values"
EXCEPTION_VALUE = "exception value"
RULES_CONTENT = "rules content"
RULES_CONTENT_ITEM = "rules content item"
REQUIRED_ENGINE_VERSION = "required_engine_version"
REQUIRED_PLUGIN_VERSIONS = "required plugin versions"
REQUIRED_PLUGIN_VERSIONS_ENTRY = "required plugin versions entry"
REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE = "required plugin versions alternative"
LIST = "list"
LIST_ITEM = "list item"
MACRO = "macro"
MACRO_CONDITION = "macro condition"
RULE = "rule"
RULE_CONDITION = "rule condition"
CONDITION_EXPRESSION = "condition expression"
RULE_OUTPUT = "rule output"
RULE_OUTPUT_EXPRESSION = "rule output expression"
RULE_PRIORITY = "rule priority"
OVERRIDE = "overrides"
EXTENSION_ITEM = "extension item"

SNIPPET_WIDTH = 160


@dataclass(frozen=True)
class Position:
    """A YAML mark: 0-based line and column, and the offset in the content (-1 when unknown)."""

    name: str
    line: int = 0
    column: int = 0
    offset: int = 0


@dataclass(frozen=True)
class Location:
    item_type: str
    item_name: str
    pos: Position


@dataclass(frozen=True)
class Context:
    """A chain of locations, outermost first. `alt_content` is the text the last location points
    into when it is not a file (a condition expression)."""

    locations: tuple[Location, ...] = ()
    alt_content: str | None = None
    alt_offset: int = 0  # offset and column of the last location within alt_content
    alt_column: int = 0

    def child(self, item_type: str, item_name: str, pos: Position) -> Context:
        return Context(self.locations + (Location(item_type, item_name, pos),))

    def expression(self, cond: str, offset: int, line: int, column: int) -> Context:
        """The location of a position inside a condition: `offset` 0-based, `line`/`column`
        1-based as the condition parser reports them, added to the condition's YAML mark."""
        base = self.locations[-1].pos if self.locations else Position("")
        name = cond if len(cond) <= 20 else cond[:17] + "..."
        name = ('"' + name + '"').replace("\n", " ").replace("\r", " ")
        pos = Position(name, base.line + line, base.column + column, base.offset + offset)
        return Context(self.locations + (Location(CONDITION_EXPRESSION, "", pos),), cond, offset, column - 1)

    @property
    def item(self) -> Location | None:
        """The rules file item the problem is about (the location right below the content)."""
        if not self.locations:
            return None
        return self.locations[1] if len(self.locations) > 1 else self.locations[0]

    def snippet(self, contents: dict[str, str]) -> str:
        if not self.locations:
            return ""
        pos = self.locations[-1].pos
        text = self.alt_content if self.alt_content is not None else contents.get(pos.name)
        if text is None:
            return ""
        offset, column = pos.offset, pos.column
        if self.alt_content is not None:
            offset, column = self.alt_offset, self.alt_column
        if offset < 0 or offset > len(text):
            return ""
        if not text:
            return "\n^\n"
        start = text.rfind("\n", 0, offset) + 1 if offset > 0 else 0
        if offset < len(text) and text[offset] == "\n" and offset > 0:
            start = text.rfind("\n", 0, offset) + 1
        end = text.find("\n", offset)
        if end < 0:
            end = len(text)
        line = text[start:end]
        if len(line) > SNIPPET_WIDTH:
            lo = max(0, column - SNIPPET_WIDTH // 2)
            hi = min(len(line), lo + SNIPPET_WIDTH)
            line = ("..." if lo > 0 else "") + line[lo:hi] + ("..." if hi < len(line) else "")
            column = column - lo + (3 if lo > 0 else 0)
        return line + "\n" + " " * max(column, 0) + "^\n"

    def as_json(self) -> dict:
        item = self.item
        return {
            "item_name": item.item_name if item else "",
            "item_type": item.item_type if item else "",
            "locations": [
                {"item_name": loc.item_name, "item_type": loc.item_type,
                 "position": {"column": loc.pos.column, "line": loc.pos.line, "name": loc.pos.name,
                              "offset": loc.pos.offset}}
                for loc in self.locations
            ],
        }

    def as_text(self) -> str:
        out = []
        for i, loc in enumerate(self.locations):
            where = f"({loc.pos.name}:{loc.pos.line}:{loc.pos.column})"
            if i == 0:
                out.append(f"In {loc.item_type}: {where}")
            else:
                name = f" '{loc.item_name}'" if loc.item_name else ""
                out.append(f"    {loc.item_type}{name}: {where}")
        return "\n".join(out) + ("\n" if out else "")


@dataclass
class Problem:
    code: str
    message: str
    ctx: Context
    deprecated_field: str | None = None

    @property
    def is_error(self) -> bool:
        return self.code in ERRORS

    @property
    def short(self) -> str:
        return ERRORS[self.code] if self.code in ERRORS else WARNINGS[self.code][0]

    @property
    def codedesc(self) -> str:
        return ERRORS[self.code] if self.code in ERRORS else WARNINGS[self.code][1]

    def as_json(self, contents: dict[str, str]) -> dict:
        ctx = self.ctx.as_json()
        ctx["snippet"] = self.ctx.snippet(contents)
        d = {"code": self.code, "codedesc": self.codedesc, "context": ctx, "message": self.message}
        if self.deprecated_field is not None:
            d["deprecated_field"] = self.deprecated_field
        return d

    def as_text(self, contents: dict[str, str]) -> str:
        snip = self.ctx.snippet(contents)
        out = self.ctx.as_text()
        if snip:
            out += "------\n" + snip + "------\n"
        msg = self.message
        if self.deprecated_field is not None:
            msg = f"field '{self.deprecated_field}'"
        return out + f"{self.code} ({self.short}): {msg}"

    def __str__(self) -> str:
        item = self.ctx.item
        where = f" ({item.item_type} '{item.item_name}')" if item and item.item_name else ""
        return f"{self.code} ({self.short}): {self.message}{where}"


class LoadError(Exception):
    """Raised inside a stage to stop processing the file at its first error."""

    def __init__(self, code: str, message: str, ctx: Context):
        super().__init__(message)
        self.problem = Problem(code, message, ctx)


@dataclass
class LoadResult:
    """What loading one rules file gave: its errors (at most one: processing stops at the first)
    and its warnings. `contents` maps each file name to its text, for the snippets."""

    name: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    contents: dict[str, str] = field(default_factory=dict)
    schema_warnings: list[str] = field(default_factory=list)

    @property
    def successful(self) -> bool:
        return not self.errors

    @property
    def has_warnings(self) -> bool:
        return bool(self.warnings)

    def warn(self, code: str, message: str, ctx: Context, deprecated_field: str | None = None) -> None:
        self.warnings.append(Problem(code, message, ctx, deprecated_field))

    def as_json(self) -> dict:
        return {
            "errors": [e.as_json(self.contents) for e in self.errors],
            "name": self.name,
            "schema_valid": not self.schema_warnings,
            "schema_warnings": list(self.schema_warnings),
            "successful": self.successful,
            "warnings": [w.as_json(self.contents) for w in self.warnings],
        }

    def as_text(self, verbose: bool = True) -> str:
        """Falco's summary for one file: the verbose form, or `name: Ok, with warnings` when only
        warnings exist and not verbose."""
        if not self.errors and not self.warnings:
            return f"{self.name}: Ok"
        if not verbose:
            status = "Invalid" if self.errors else "Ok, with warnings"
            out = f"{self.name}: {status}"
            if self.errors:
                out += f" {len(self.errors)} errors: [" + " ".join(f"{e.code} ({e.short})" for e in self.errors) + "]"
            if self.warnings:
                out += f" {len(self.warnings)} warnings: [" + " ".join(
                    f"{w.code} ({w.short})" for w in self.warnings) + "]"
            return out
        lines = [f"{self.name}: " + ("Invalid" if self.errors else "Ok, with warnings")]
        if self.schema_warnings:
            lines.append(f"{len(self.schema_warnings)} Schema warnings:")
            for s in self.schema_warnings:
                lines += ["------", s, "------"]
        if self.errors:
            lines.append(f"{len(self.errors)} Errors:")
            for e in self.errors:
                lines.append(e.as_text(self.contents))
        if self.warnings:
            lines.append(f"{len(self.warnings)} Warnings:")
            for w in self.warnings:
                lines.append(w.as_text(self.contents))
        return "\n".join(lines)


def results_json(results: list[LoadResult]) -> str:
    """Falco's `-V` JSON document (keys sorted, as nlohmann's std::map objects print)."""
    return json.dumps({"falco_load_results": [r.as_json() for r in results]}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
