"""`tiercel rules validate|list` and `tiercel replay`: the rules engine offline.

`rules_app` is the `tiercel rules` sub-command group; other modules add commands to it
(`from tiercel.rules.cli import rules_app; rules_app.command("serve")(serve)`) before `register`
runs, or after (typer resolves commands when the CLI is invoked). Imports stay inside the commands:
the CLI starts for every conformance case.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

rules_app = typer.Typer(help="Rules files: validate, list (and, with a running system, manage).",
                        no_args_is_help=True)

RulesOpt = Annotated[list[str] | None, typer.Option("--rules", "-r", help="Rules file or directory (repeatable); "
                                                    "default: Tiercel's default ruleset.")]


def default_rules_path() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_rules.yaml")


@rules_app.command("validate")
def validate(
    files: Annotated[list[str], typer.Argument(help="Rules files or directories, loaded in order.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print Falco's -V JSON.")] = False,
    store: Annotated[bool, typer.Option("--store", help="Validate against the running system's rules store "
                                                        "(over NATS), as `tiercel rules put` would.")] = False,
    nats_url: Annotated[str | None, typer.Option("--nats-url", help="NATS server URL (with --store).",
                                                 envvar="TIERCEL_NATS_URL")] = None,
) -> None:
    """Load the rules files in sequence (as `falco -V`) and print the result of each; exit 1 on any error."""
    if store:
        from tiercel.cli.common import load_config
        from tiercel.rules.cli_service import validate_store

        return validate_store(files, json_out, load_config(None, None, nats_url))
    from tiercel.rules.engine import read_rules_files
    from tiercel.rules.loader import Loader, results_json

    loader = Loader()
    results = [loader.load(name, content) for name, content in read_rules_files(files)]
    if json_out:
        print(results_json(results))
    else:
        for r in results:
            if r.successful and r.warnings:
                print(f"{r.name}: Ok, with warnings")
                print(r.as_text(verbose=True), file=sys.stderr)
            else:
                print(r.as_text(verbose=True))
    if not all(r.successful for r in results):
        raise typer.Exit(1)


@rules_app.command("list")
def list_rules(
    rules: RulesOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML configuration file.")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Override a config key: key=value.")] = None,
    store: Annotated[bool, typer.Option("--store", help="List the running system's rules store (over NATS): "
                                                        "files, selections, rules, workers' revisions.")] = False,
    nats_url: Annotated[str | None, typer.Option("--nats-url", help="NATS server URL (with --store).",
                                                 envvar="TIERCEL_NATS_URL")] = None,
) -> None:
    """List the rules of the rules files: name, source, priority, tags, enabled, event types."""
    import json

    if store:
        from tiercel.cli.common import load_config
        from tiercel.rules.cli_service import list_store

        return list_store(json_out, load_config(config, option, nats_url))

    outcome = _load(rules, config, option, all_events=False)
    rows = outcome.ruleset.describe()
    if json_out:
        print(json.dumps({"rules": rows}, indent=2))
        return
    for r in rows:
        on = "enabled " if r["enabled"] else "disabled"
        ev = ",".join(r["event_types"]) if len(r["event_types"]) <= 12 else f"{len(r['event_types'])} types"
        print(f"{on} {r['priority']:<13} {r['source']:<9} {r['name']}  tags=[{','.join(r['tags'])}] evt.type={ev}")


def _load(rules: list[str] | None, config: str | None, option: list[str] | None, all_events: bool):
    from tiercel.cli.common import load_config
    from tiercel.rules.engine import Engine

    cfg = load_config(config, option)
    engine = Engine(cfg, all_events=all_events)
    paths = list(rules) if rules else [default_rules_path()]
    outcome = engine.load_paths(paths)
    failed = [r for r in outcome.results if not r.successful]
    if failed:
        for r in failed:
            print(r.as_text(verbose=True), file=sys.stderr)
        print(f"Error: Could not load rules file {failed[0].name}", file=sys.stderr)
        raise typer.Exit(1)
    outcome.engine = engine
    return outcome


def replay(
    trace: Annotated[str, typer.Argument(help="Capture file: .scap (syscall) or k8s audit JSON.")],
    rules: RulesOpt = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Override a config key: key=value.")] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML configuration file.")] = None,
    disable: Annotated[list[str] | None, typer.Option("-D", help="Disable rules whose name contains this.")] = None,
    tags: Annotated[list[str] | None, typer.Option("-t", help="Run only rules with this tag.")] = None,
    disable_tags: Annotated[list[str] | None, typer.Option("-T", help="Disable rules with this tag.")] = None,
    all_events: Annotated[bool, typer.Option("-A", help="Evaluate all event types (skip none).")] = False,
) -> None:
    """Evaluate a capture offline against rules files; one alert per stdout line, summary on stderr."""
    from tiercel.rules.engine import SelectionError, check_plugin_requirements
    from tiercel.rules.replay import TraceError, read_trace, replay_events

    outcome = _load(rules, config, option, all_events)
    for r in outcome.results:
        if r.warnings:
            print(f"{r.name}: Ok, with warnings", file=sys.stderr)
    err = check_plugin_requirements(outcome.ruleset.compiled)
    if err:
        print(f"Runtime error: {err}. Exiting.", file=sys.stderr)
        raise typer.Exit(1)
    rs = outcome.ruleset
    try:
        rs.apply_cli_selection(disable or (), tags or (), disable_tags or ())
    except SelectionError as e:
        print(f"Runtime error: {e}. Exiting.", file=sys.stderr)
        raise typer.Exit(1) from None
    fmt = outcome.engine.formatter
    out = sys.stdout
    line = fmt.line
    try:
        summary = replay_events(rs, read_trace(trace, warn=lambda m: print(m, file=sys.stderr)),
                                lambda m: out.write(line(m) + "\n"))
    except TraceError as e:
        out.flush()
        print(f"Runtime error: {e}. Exiting.", file=sys.stderr)
        raise typer.Exit(1) from None
    out.flush()
    sys.stderr.write(summary.text())


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.command("replay")(replay)
