"""`tiercel rules serve` and the store commands `tiercel rules put|get|list|delete|enable|disable`
(`validate --store`), and `tiercel config get|set|unset|list`, against a running system."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Annotated, Any

import typer

from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, fail, load_config

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
RevOpt = Annotated[int | None, typer.Option("--revision", "-r",
                                            help="Only if the ruleset is still at this revision (compare-and-set).")]
WaitOpt = Annotated[float, typer.Option("--wait", help="Seconds to wait for every worker to run the change.")]


def _cfg(config, option, nats_url):
    return load_config(config, option, nats_url)


def _finish(reply: dict[str, Any], json_out: bool, ok_line: str = "") -> None:
    """Print a change's answer Falco-style; exit 1 when it was refused."""
    from tiercel.cli.ctl import print_json, workers_line

    if json_out:
        print_json(reply)
    else:
        text = reply.get("load_result_text")
        if text and (not reply["ok"] or "warning" in text.lower() or reply.get("code") == "invalid"):
            print(text)
        if reply["ok"]:
            if ok_line:
                print(ok_line.format(**reply))
            if "workers" in reply:
                print(workers_line(reply, reply.get("revision")), file=sys.stderr)
        else:
            print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
    if not reply["ok"]:
        raise typer.Exit(1)


# --- serve ----------------------------------------------------------------------------------------
def serve(
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
    index: Annotated[int, typer.Option("--index", help="Worker index (metrics port = metrics.rules_port + index).")] = 0,
) -> None:
    """Run one rules worker: evaluate events from the bus, publish alerts, serve the control plane."""
    from tiercel.common.log import setup
    from tiercel.rules.service import serve as run

    cfg = load_config(config, option, nats_url)
    if not cfg["nats.url"]:
        fail("tiercel rules serve needs a NATS server: give --nats-url (or TIERCEL_NATS_URL); "
             "`tiercel up` runs everything with an embedded one")
    if index < 0:
        fail("--index must be >= 0")
    setup(cfg["log_level"], f"rules[{index}]")
    raise typer.Exit(run(cfg, index))


# --- the rules store ------------------------------------------------------------------------------
def put(
    file: Annotated[str, typer.Argument(help="Rules file to add or replace ('-' reads stdin; needs --name).")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name in the store (default: the file's name).")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Load before this file (new files only).")] = None,
    revision: RevOpt = None, wait: WaitOpt = 2.0, json_out: JsonOpt = False,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Add or replace a rules file on the running system; rejected (exit 1) if it does not load."""
    from tiercel.cli.ctl import request

    cfg = _cfg(config, option, nats_url)
    if file == "-":
        if not name:
            fail("reading the rules file from stdin needs --name")
        content = sys.stdin.read()
    else:
        try:
            content = pathlib.Path(file).read_text()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {file}: {getattr(e, 'strerror', None) or e}")
    args: dict[str, Any] = {"name": name or pathlib.Path(file).name, "content": content, "wait_s": wait}
    if before:
        args["before"] = before
    if revision is not None:
        args["expected_revision"] = revision
    reply = request(cfg, "rules", "put", timeout=60 + wait, **args)
    _finish(reply, json_out, f"{args['name']}: Ok (ruleset revision {{revision}})")


def get(
    name: Annotated[str, typer.Argument(help="Rules file name in the store.")],
    revision: Annotated[int | None, typer.Option("--revision", "-r", help="Ruleset revision (default: current).")] = None,
    json_out: JsonOpt = False, config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Print a rules file from the store."""
    from tiercel.cli.ctl import print_json, request

    cfg = _cfg(config, option, nats_url)
    args: dict[str, Any] = {"name": name}
    if revision:
        args["revision"] = revision
    reply = request(cfg, "rules", "get", **args)
    if json_out:
        print_json(reply)
    elif reply["ok"]:
        sys.stdout.write(reply["content"])
    if not reply["ok"]:
        if not json_out:
            print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


def list_store(json_out: bool, cfg: Any, rules: bool = True) -> None:
    """`tiercel rules list` against the running system."""
    from tiercel.cli.ctl import print_json, request, workers_line

    reply = request(cfg, "rules", "list", rules=rules)
    if json_out:
        print_json(reply)
    elif reply["ok"]:
        print(f"Ruleset revision {reply['revision']} ({workers_line(reply, reply['revision'])})")
        print("Files (load order):")
        for f in reply["files"]:
            print(f"  {f['name']:40} {f['size']:>8} bytes  sha256 {f['sha256'][:12]}  (kv revision {f['revision']})")
        if reply["selection"]:
            print("Selections (in order):")
            for s in reply["selection"]:
                print(f"  {'enable' if s['enable'] else 'disable'} {s['kind']} {s['value']!r}")
        if rules and reply.get("rules") is not None:
            print("Rules:")
            for r in reply["rules"]:
                state = "enabled " if r.get("enabled") else "disabled"
                if not r.get("loaded", True):
                    state = "below priority"
                print(f"  {state:14} {r['priority']:13} {r['source']:10} {r['name']}")
    if not reply["ok"]:
        print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


def delete(
    name: Annotated[str, typer.Argument(help="Rules file name in the store.")],
    revision: RevOpt = None, wait: WaitOpt = 2.0, json_out: JsonOpt = False,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Remove a rules file from the running system; rejected if the rest does not load without it."""
    from tiercel.cli.ctl import request

    cfg = _cfg(config, option, nats_url)
    args: dict[str, Any] = {"name": name, "wait_s": wait}
    if revision is not None:
        args["expected_revision"] = revision
    _finish(request(cfg, "rules", "delete", timeout=60 + wait, **args), json_out,
            f"{name}: deleted (ruleset revision {{revision}})")


def _selection_command(enable: bool):
    verb = "enable" if enable else "disable"

    def cmd(
        pattern: Annotated[str | None, typer.Argument(help="Rule name (`*` wildcards allowed).")] = None,
        substring: Annotated[str | None, typer.Option("--substring", "-s", help="Every rule whose name contains this.")] = None,
        tag: Annotated[str | None, typer.Option("--tag", "-t", help="Every rule with this tag.")] = None,
        revision: RevOpt = None, wait: WaitOpt = 2.0, json_out: JsonOpt = False,
        config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
    ) -> None:
        from tiercel.cli.ctl import request

        given = [(k, v) for k, v in (("name", pattern), ("substring", substring), ("tag", tag)) if v]
        if len(given) != 1:
            fail(f"give exactly one of: a rule name, --substring or --tag (tiercel rules {verb} --help)")
        cfg = _cfg(config, option, nats_url)
        args: dict[str, Any] = {given[0][0]: given[0][1], "wait_s": wait}
        if revision is not None:
            args["expected_revision"] = revision
        _finish(request(cfg, "rules", verb, timeout=60 + wait, **args), json_out,
                f"{verb}d rules with {given[0][0]} {given[0][1]!r} (ruleset revision {{revision}})")

    cmd.__doc__ = f"{verb.capitalize()} rules on the running system, by name, name substring or tag (persisted)."
    return cmd


def validate_store(files: list[str], json_out: bool, cfg: Any) -> None:
    """Validate files as `put` would, with the rules in the running system's store."""
    from tiercel.cli.ctl import request

    bad = False
    for file in files:
        try:
            content = pathlib.Path(file).read_text()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {file}: {getattr(e, 'strerror', None) or e}")
        reply = request(cfg, "rules", "validate", name=pathlib.Path(file).name, content=content)
        if json_out:
            print(json.dumps(reply.get("load_result", reply), sort_keys=True))
        else:
            print(reply.get("load_result_text") or reply.get("error"))
        bad = bad or not reply["ok"]
    if bad:
        raise typer.Exit(1)


# --- the configs store ----------------------------------------------------------------------------
def config_get(
    key: Annotated[str, typer.Argument(help="A live configuration key (tiercel config keys).")],
    json_out: JsonOpt = False, config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Print a live configuration value of the running system."""
    from tiercel.cli.ctl import print_json, request

    reply = request(_cfg(config, option, nats_url), "config", "get", key=key)
    if json_out:
        print_json(reply)
    elif reply["ok"]:
        print(f"{reply['key']}: {json.dumps(reply['value'])}  ({reply['source']}, revision {reply['revision']})")
    if not reply["ok"]:
        print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


def config_set(
    assignment: Annotated[list[str], typer.Argument(help="key=value, or key value.")],
    revision: Annotated[int | None, typer.Option("--revision", "-r",
                                                 help="Only if the key is still at this revision.")] = None,
    wait: WaitOpt = 2.0, json_out: JsonOpt = False,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Change a live configuration key on every worker of the running system."""
    from tiercel.cli.ctl import request, workers_line

    if len(assignment) == 1 and "=" in assignment[0]:
        key, _, value = assignment[0].partition("=")
    elif len(assignment) == 2:
        key, value = assignment
    else:
        fail("expected key=value (or key value), e.g. tiercel config set priority=error")
    args: dict[str, Any] = {"key": key.strip(), "value": value, "wait_s": wait}
    if revision is not None:
        args["expected_revision"] = revision
    reply = request(_cfg(config, option, nats_url), "config", "set", timeout=30 + wait, **args)
    if json_out:
        from tiercel.cli.ctl import print_json

        print_json(reply)
    elif reply["ok"]:
        print(f"{reply['key']}: {json.dumps(reply['value'])} (revision {reply['revision']})")
        print(workers_line(reply, reply["revision"], key="config_revision"), file=sys.stderr)
    if not reply["ok"]:
        if not json_out:
            print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


def config_unset(
    key: Annotated[str, typer.Argument(help="A live configuration key.")],
    revision: Annotated[int | None, typer.Option("--revision", "-r", help="Only if the key is at this revision.")] = None,
    wait: WaitOpt = 2.0, json_out: JsonOpt = False,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Remove a live value: every worker returns to its own configuration for that key."""
    from tiercel.cli.ctl import print_json, request

    args: dict[str, Any] = {"key": key, "wait_s": wait}
    if revision is not None:
        args["expected_revision"] = revision
    reply = request(_cfg(config, option, nats_url), "config", "unset", timeout=30 + wait, **args)
    if json_out:
        print_json(reply)
    elif reply["ok"]:
        print(f"{reply['key']}: unset (workers use their own value, here {json.dumps(reply['value'])})")
    if not reply["ok"]:
        if not json_out:
            print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


def config_list(json_out: JsonOpt = False, config: ConfigOpt = None, option: OverrideOpt = None,
                nats_url: NatsUrlOpt = None) -> None:
    """List the live configuration keys of the running system: stored values and workers' own."""
    from tiercel.cli.ctl import print_json, request

    reply = request(_cfg(config, option, nats_url), "config", "list")
    if json_out:
        print_json(reply)
    elif reply["ok"]:
        for v in reply["entries"]:
            src = f"store, revision {v['revision']}" if v["source"] == "store" else "worker"
            print(f"{v['key']:40} {json.dumps(v['value']):24} ({src})")
    if not reply["ok"]:
        print(f"tiercel: error: {reply.get('error')}", file=sys.stderr)
        raise typer.Exit(1)


# --- registration ---------------------------------------------------------------------------------
def _group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-app `name` (created by whichever module registers first)."""
    for g in app.registered_groups:
        if g.name == name and g.typer_instance is not None:
            return g.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def _has(group: typer.Typer, name: str) -> bool:
    return any((c.name or (c.callback.__name__ if c.callback else "")) == name for c in group.registered_commands)


def register(app: typer.Typer) -> None:
    rules = _group(app, "rules", "Rules: validate and list files; run workers; change the running system's rules.")
    rules.command("serve")(serve)
    rules.command("put")(put)
    rules.command("get")(get)
    rules.command("delete")(delete)
    rules.command("enable")(_selection_command(True))
    rules.command("disable")(_selection_command(False))
    if not _has(rules, "list"):
        @rules.command("list")
        def list_cmd(json_out: JsonOpt = False, config: ConfigOpt = None, option: OverrideOpt = None,
                     nats_url: NatsUrlOpt = None) -> None:
            """List the running system's rules files, selections and rules."""
            list_store(json_out, _cfg(config, option, nats_url))
    if not _has(rules, "validate"):
        @rules.command("validate")
        def validate_cmd(files: Annotated[list[str], typer.Argument(help="Rules files.")], json_out: JsonOpt = False,
                         config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None) -> None:
            """Validate rules files against the running system's store (as `put` would)."""
            validate_store(files, json_out, _cfg(config, option, nats_url))
    cfg_app = _group(app, "config", "Configuration.")
    cfg_app.command("get")(config_get)
    cfg_app.command("set")(config_set)
    cfg_app.command("unset")(config_unset)
    cfg_app.command("list")(config_list)
