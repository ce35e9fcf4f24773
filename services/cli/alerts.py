"""`tiercel alerts`: tail alerts straight from NATS, pretty (coloured by priority) or `--json`.

Filters become subject wildcards, so the server sends only what matches: `--priority warning`
(that priority and more severe) subscribes to one subject per priority, `--source` and `--rule`
fill their tokens. Tags are not in the subject; `--tag` filters here. A core NATS subscriber can
see an alert twice when a worker died after publishing it (the alerts stream deduplicates, core
NATS does not), so alerts are deduplicated by id here.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from typing import Annotated, Any

import typer

from tiercel.api.cli import CaOpt, CertOpt, GrpcOpt, InsecureOpt, KeyOpt
from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, fail, load_config
from tiercel.common import bus
from tiercel.common.config import PRIORITIES

COLORS = {
    "emergency": "\033[1;97;41m", "alert": "\033[1;91m", "critical": "\033[1;31m", "error": "\033[31m",
    "warning": "\033[33m", "notice": "\033[36m", "informational": "\033[32m", "debug": "\033[2m",
}
RESET = "\033[0m"


def alert_subjects(priority: str | None = None, sources: list[str] | None = None,
                   rules: list[str] | None = None) -> list[str]:
    """The subjects (with wildcards) that carry exactly the alerts the filters select."""
    if priority:
        p = priority.strip().lower()
        p = "informational" if p == "info" else p
        if p not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
        prios = list(PRIORITIES[: PRIORITIES.index(p) + 1])
        if prios == list(PRIORITIES):
            prios = ["*"]
    else:
        prios = ["*"]
    srcs = [bus.token(s) for s in sources] if sources else ["*"]
    rls = [bus.slug(r) for r in rules] if rules else ["*"]
    return [f"{bus.ALERTS_SUBJECT}.{p}.{s}.{r}" for p in prios for s in srcs for r in rls]


class Dedup:
    """Recently seen alert ids (bounded)."""

    def __init__(self, size: int = 100_000):
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()

    def first(self, alert_id: str) -> bool:
        if not alert_id:
            return True
        if alert_id in self.ids:
            return False
        self.ids[alert_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


def render(a: dict[str, Any], color: bool) -> str:
    pr = str(a.get("priority", "")).lower()
    text = a.get("output") or f"{a.get('time')}: {a.get('priority')} {a.get('rule')}"
    if a.get("source") == "internal" and a.get("output_fields"):
        fields = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(a["output_fields"].items()))
        text = f"{a.get('time')}: {a.get('priority')} {text} ({fields})"
    c = COLORS.get(pr, "") if color else ""
    return f"{c}{text}{RESET if c else ''}"


def alerts(
    priority: Annotated[str | None, typer.Option("--priority", "-p",
                                                 help="Minimum priority (that one and more severe).")] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", "-r", help="Rule name (repeatable).")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Event source (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Rule tag (repeatable; any matches).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON alert per line (Falco's shape + id, seq).")] = False,
    count: Annotated[int, typer.Option("--count", "-n", help="Stop after this many alerts (0 = never).")] = 0,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
    grpc_addr: GrpcOpt = None, cert: CertOpt = None, key: KeyOpt = None, ca: CaOpt = None,
    insecure: InsecureOpt = False,
    hostname: Annotated[list[str] | None, typer.Option("--hostname", help="--grpc: host name (repeatable).")] = None,
    condition: Annotated[str, typer.Option("--condition", help="--grpc: Falco condition over the alert.")] = "",
    resume_after: Annotated[str, typer.Option("--resume-after", help="--grpc: start after this alert id.")] = "",
) -> None:
    """Tail alerts as they are raised, from NATS or (--grpc) from a running API.

    From NATS the filters become subjects; with --grpc the API filters, and the command reconnects
    and resumes after the last alert it printed."""
    import asyncio

    from tiercel.cli.ctl import run_nats

    if grpc_addr:
        from tiercel.api.cli import AlertQuery, GrpcTarget, tail_grpc

        q = AlertQuery(priority=priority, rules=list(rule or ()), sources=list(source or ()), tags=list(tag or ()),
                       hostnames=list(hostname or ()), condition=condition, resume_after=resume_after)
        raise typer.Exit(tail_grpc(GrpcTarget(grpc_addr, cert, key, ca, insecure), q, json_out, count,
                                   sys.stdout.isatty() and not json_out, render))
    if hostname or condition or resume_after:
        fail("--hostname, --condition and --resume-after need --grpc (the API filters on them)")
    cfg = load_config(config, option, nats_url)
    try:
        subjects = alert_subjects(priority, source, rule)
    except ValueError as e:
        fail(str(e))
    tags = set(tag or ())
    color = sys.stdout.isatty() and not json_out
    dedup = Dedup()

    async def tail(nc: Any) -> None:
        done = asyncio.Event()
        seen = 0

        async def cb(msg: Any) -> None:
            nonlocal seen
            try:
                a = bus.decode_alert(msg.data, msg.headers)
            except bus.BadEnvelope:
                return
            if not dedup.first(str(a.get("id", ""))):
                return
            if tags and not tags.intersection(a.get("tags") or ()):
                return
            line = json.dumps(a, sort_keys=True, ensure_ascii=False) if json_out else render(a, color)
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                done.set()
                return
            seen += 1
            if count and seen >= count:
                done.set()

        for s in subjects:
            await nc.subscribe(s, cb=cb)
        await nc.flush()
        print(f"tiercel alerts: listening on {', '.join(subjects)}", file=sys.stderr)
        await done.wait()

    try:
        run_nats(cfg, tail, "tiercel-alerts")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
