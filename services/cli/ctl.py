"""Talking to a running system from the command line: control requests over NATS, one line on
failure (no server, no worker answering, a timeout), never a traceback."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tiercel.cli.common import fail
from tiercel.common import bus
from tiercel.common.config import Config

T = TypeVar("T")


def need_url(cfg: Config) -> None:
    if not cfg["nats.url"]:
        fail("no NATS server to talk to: give --nats-url (or TIERCEL_NATS_URL, or nats.url in the config); "
             "`tiercel up` prints the URL of its embedded server")


def run_nats(cfg: Config, fn: Callable[[Any], Awaitable[T]], name: str = "tiercel-cli") -> T:
    """Connect, run `fn(nc)`, close. Connection problems end the command with one line."""
    from tiercel.common.natsconn import NatsUnavailable, connect

    need_url(cfg)

    async def main() -> T:
        nc = await connect(cfg, name, max_reconnect_attempts=0)
        try:
            return await fn(nc)
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except NatsUnavailable as e:
        fail(str(e))


def request(cfg: Config, area: str, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
    """One control request; returns the decoded reply (ok or not)."""
    import nats.errors

    subject = bus.control_subject(area, op)

    async def go(nc: Any) -> dict[str, Any]:
        try:
            msg = await nc.request(subject, bus.encode_request(op, **args), timeout=timeout)
        except nats.errors.NoRespondersError:
            fail(f"no rules worker is running to answer {subject} (start `tiercel rules serve` or `tiercel up`)")
        except nats.errors.TimeoutError:
            fail(f"no answer on {subject} within {timeout:g}s")
        try:
            return bus.decode_reply(msg.data)
        except bus.BadEnvelope as e:
            fail(f"bad answer on {subject}: {e}")

    return run_nats(cfg, go)


async def gather(nc: Any, subject: str, payload: bytes, wait: float = 0.5) -> list[bytes]:
    """Request to many responders (no queue group): every answer arriving within `wait`."""
    inbox = nc.new_inbox()
    out: list[bytes] = []

    async def cb(msg: Any) -> None:
        out.append(msg.data)

    sub = await nc.subscribe(inbox, cb=cb)
    await nc.publish(subject, payload, reply=inbox)
    await nc.flush()
    await asyncio.sleep(wait)
    await sub.unsubscribe()
    return out


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))


def workers_line(reply: dict[str, Any], want: int | None = None, key: str = "revision") -> str:
    """`2 workers: rules0-... rev 7, rules1-... rev 7`."""
    ws = reply.get("workers") or []
    if not ws:
        return "no live workers"
    parts = []
    for w in ws:
        mark = "" if want is None or w.get(key, 0) >= want else " (not yet)"
        parts.append(f"{w['instance']} {'rev' if key == 'revision' else 'config rev'} {w.get(key, 0)}{mark}")
    return f"{len(ws)} worker{'s' if len(ws) != 1 else ''}: " + ", ".join(parts)


def eprint(*a: Any) -> None:
    print(*a, file=sys.stderr)
