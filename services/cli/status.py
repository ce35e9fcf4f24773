"""`tiercel status`: every service instance of a running system, its ruleset revision, rates, lag
and drops, from `tiercel.ctl.status.get` (every service answers), the heartbeats and the latest
drop report of each stage and host (stream `TIERCEL_DROPS`)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer

from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, load_config
from tiercel.common import bus


async def collect(nc: Any, wait: float = 1.2) -> dict[str, Any]:
    """Status answers, heartbeats seen within `wait`, and the last drop report per subject."""
    from nats.js import api

    from tiercel.cli.ctl import gather

    beats: dict[str, dict[str, Any]] = {}

    async def on_hb(msg: Any) -> None:
        try:
            hb = json.loads(msg.data)
            beats[hb["instance"]] = hb
        except (ValueError, KeyError, TypeError):
            pass

    sub = await nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.>", cb=on_hb)
    answers = await gather(nc, bus.control_subject("status", "get"), bus.encode_request("get"), wait=0.5)
    drops: dict[str, dict[str, Any]] = {}
    js = nc.jetstream()
    try:
        psub = await js.subscribe(f"{bus.DROPS_SUBJECT}.>", ordered_consumer=True,
                                  deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        try:
            while True:
                m = await psub.next_msg(timeout=0.3)
                try:
                    r = bus.DropReport.decode(m.data)
                    drops[m.subject] = {"stage": r.stage, "host": r.host, "instance": r.instance,
                                        "totals": r.totals, "time_ns": r.time_ns}
                except bus.BadEnvelope:
                    pass
        except Exception:  # timeout: no more
            pass
        await psub.unsubscribe()
    except Exception:
        pass
    rest = wait - 0.8
    if rest > 0:
        await asyncio.sleep(rest)
    await sub.unsubscribe()
    services: dict[str, dict[str, Any]] = {}
    for inst, hb in beats.items():
        services[inst] = {"service": hb.get("service"), "host": hb.get("host"), "instance": inst,
                          "state": hb.get("state"), "revision": hb.get("revision", 0), "rates": hb.get("rates", {}),
                          "lag": hb.get("lag", 0), "counters": hb.get("counters", {}), "time_ns": hb.get("time_ns")}
    for raw in answers:
        try:
            a = json.loads(raw)
        except ValueError:
            continue
        inst = a.get("instance")
        if not inst:
            continue
        s = services.setdefault(inst, {"instance": inst})
        for k, v in a.items():
            if k not in ("v", "ok", "error"):
                s[k] = v
    return {"services": sorted(services.values(), key=lambda s: (str(s.get("service")), s["instance"])),
            "drops": sorted(drops.values(), key=lambda d: (d["stage"], d["host"]))}


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
) -> None:
    """Show every service and worker of the running system: state, revision, rates, lag, drops."""
    from tiercel.cli.ctl import print_json, run_nats

    cfg = load_config(config, option, nats_url)
    st = run_nats(cfg, collect, "tiercel-status")
    if json_out:
        print_json(st)
        return
    if not st["services"]:
        print("no service answered (is the system running?)")
        raise typer.Exit(1)
    now = time.time_ns()
    print(f"{'SERVICE':8} {'INSTANCE':28} {'HOST':16} {'STATE':9} {'REV':>5} {'EVENTS/S':>10} {'ALERTS/S':>9} "
          f"{'LAG':>6} {'DROPS':>7} {'SEEN':>6}")
    for s in st["services"]:
        rates = s.get("rates") or {}
        drops = s.get("drops")
        n_drops = sum(drops.values()) if isinstance(drops, dict) else (s.get("counters") or {}).get("drops", 0)
        age = f"{(now - s['time_ns']) / 1e9:.1f}s" if s.get("time_ns") else "-"
        print(f"{str(s.get('service', '?')):8} {s['instance'][:28]:28} {str(s.get('host', ''))[:16]:16} "
              f"{str(s.get('state', '?')):9} {s.get('revision', 0):>5} {rates.get('events', 0):>10,.0f} "
              f"{rates.get('alerts', 0):>9,.1f} {s.get('lag', 0):>6} {n_drops:>7} {age:>6}")
    if st["drops"]:
        print()
        print("Drops since each instance started, by stage and host (latest report):")
        for d in st["drops"]:
            tot = ", ".join(f"{k}={v}" for k, v in sorted(d["totals"].items())) or "none"
            print(f"  {d['stage']:7} {d['host']:20} {d['instance']:28} {tot}")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
