"""`tiercel condition CONDITION`: parse, check and compile one condition, for debugging rules.

Prints Falco's `condition_compiled` form, the event types, the fields and operators, the
warnings, and with `--code` the generated Python. `--macros FILE` expands macros and lists of a
rules file first (no loader checks: only lists and macros are read).
"""

from __future__ import annotations

from typing import Annotated

import typer


def condition(
    text: Annotated[str, typer.Argument(help="The condition, in Falco's syntax.")],
    source: Annotated[str, typer.Option("--source", "-s", help="Event source: syscall, k8s_audit, ...")] = "syscall",
    code: Annotated[bool, typer.Option("--code", help="Print the generated Python.")] = False,
    rules_file: Annotated[str | None, typer.Option("--macros", help="A rules file whose lists and macros "
                                                                    "the condition may use.")] = None,
    output: Annotated[str | None, typer.Option("--output", help="Also compile this output format.")] = None,
) -> None:
    """Parse, type-check and compile a condition; print what Tiercel made of it."""
    from tiercel.cli.common import fail
    from tiercel.rules import condition as C

    lists: list[tuple[str, list[str]]] = []
    macros: dict[str, C.Node] = {}
    try:
        if rules_file:
            import yaml

            with open(rules_file, encoding="utf-8") as fh:
                docs = list(yaml.load_all(fh, Loader=yaml.BaseLoader))
            items = [i for d in docs if isinstance(d, list) for i in d if isinstance(i, dict)]
            lists = [(i["list"], list(i.get("items") or [])) for i in items if "list" in i]
            for i in items:
                if "macro" in i and "condition" in i:
                    t, _ = C.substitute_lists(i["condition"], lists)
                    macros[i["macro"]] = C.parse(t)
        text, _ = C.substitute_lists(text, lists)
        tree = C.parse(text)
        tree, used = C.expand_macros(tree, macros.get)
        checked = C.check(tree, source)
        print(f"condition_compiled: {C.to_string(tree)}")
        if source == "syscall":
            codes = checked.evttypes
            names = C.event_names(codes)
            print(f"event types: {', '.join(names)}" if len(codes) <= 100 else
                  f"event types: every type but {len(C.event_names(None)) - len(names)} ({len(codes)} codes)")
        print(f"fields: {', '.join(checked.fields)}")
        print(f"operators: {', '.join(checked.operators)}")
        if used:
            print(f"macros: {', '.join(used)}")
        for w in checked.warnings:
            print(f"warning: {w.code}: {w.message} (at {w.position})")
        if output is not None:
            fmt = C.compile_output(output, source)
            print(f"output fields: {', '.join(fmt.field_names)}")
        if code:
            ev = C.build_evaluator(source, [("condition", checked, None)])
            print(ev.source_code, end="")
    except C.ConditionError as e:
        fail(f"{e.message} (at {e.position})")
    except (OSError, KeyError, TypeError) as e:
        fail(str(e))


def register(app: typer.Typer) -> None:
    app.command("condition")(condition)
