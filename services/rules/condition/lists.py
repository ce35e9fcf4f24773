"""List substitution: Falco's textual `resolve_list` (spec §2.9, §8.1), done before parsing.

    text, used = substitute_lists(condition, [("shell_binaries", ["bash", "sh"]), ...])

For each list, in the order given (Falco: list index order), every occurrence of the list's name
in the condition **text** that stands between delimiters (string start/end or one of
` \\t\\n\\r(),=`) is replaced, together with the blanks around it, by `" " + items + " "`, the
items joined with `", "` after `quote_item`. An empty list also removes one neighbouring comma,
the left one first. It is plain text work: names inside quoted strings are replaced too when the
delimiters line up, and a bare `x in mylist` becomes `x in  a, b ` (which does not parse unless
the list has one item). Names that are not lists stay as they are (§8.2).

Expanding lists inside lists (one level, with visibility) is the loader's job: it passes each
list's compiled items here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="


def quote_item(item: str) -> str:
    """Falco's `quote_item`: wrap in `"` when the item has a space and does not start with a quote.
    No escaping is done."""
    if " " in item and not item.startswith(('"', "'")):
        return '"' + item + '"'
    return item


def substitute_list(condition: str, name: str, items: Sequence[str]) -> tuple[str, bool]:
    """Substitute one list; returns the new text and whether the list was used."""
    if not name:
        return condition, False
    cnd = condition
    start = cnd.find(name)
    if start < 0:
        return condition, False
    sub = ", ".join(quote_item(i) for i in items)
    used = False
    while start >= 0:
        end = start + len(name)
        if (start == 0 or cnd[start - 1] in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS):
            while start > 0 and cnd[start - 1] in _BLANKS:
                start -= 1
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            if not sub:
                if start > 0 and cnd[start - 1] == ",":
                    start -= 1
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            cnd = cnd[:start] + " " + sub + " " + cnd[end:]
            used = True
            start = cnd.find(name, start + len(sub) + 2)
        else:
            start = cnd.find(name, start + 1)
    return cnd, used


def substitute_lists(condition: str, lists: Iterable[tuple[str, Sequence[str]]]) -> tuple[str, list[str]]:
    """Apply every list in order; returns the new text and the names of the lists it used."""
    used: list[str] = []
    for name, items in lists:
        condition, u = substitute_list(condition, name, items)
        if u:
            used.append(name)
    return condition, used
