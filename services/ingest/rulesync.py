"""Ingest follows the ruleset: the kernel audits what the live rules need, nothing more.

The rules service commits each ruleset to the KV bucket `tiercel_rules` (its `manifest` key is the
commit point, see `tiercel.rules.store`). Ingest watches that key; for each new revision it loads
the files with the rules engine (the same loader and selections the rules workers use), takes the
event-type sets of the enabled syscall rules (`Rule.evttypes`, what Falco's interesting-syscalls
set is made of) and hands the names to the driver, which turns them plus the state engine's own
needs into audit rules. A ruleset that does not load keeps the previous syscall set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tiercel.common import bus

log = logging.getLogger("tiercel.ingest.rules")


def event_types_of(ruleset: Any) -> set[str] | None:
    """The event-type names the enabled syscall rules need; None when one needs every type."""
    from tiercel.rules.condition.evttypes import event_names

    names: set[str] = set()
    for r in ruleset.enabled_rules():
        if r.source != "syscall":
            continue
        if r.evttypes is None:
            return None
        names.update(event_names(r.evttypes, "syscall"))
    names.discard("asyncevent")
    return names


def build_event_types(cfg: Any, files: list[tuple[str, str]], selection: list[Any]) -> set[str] | None | bool:
    """Event types of a ruleset (files + selections) as the rules workers would load it; False
    when it does not load."""
    from tiercel.rules.compiled import EngineAdapter

    build = EngineAdapter(cfg, cfg.hostname).build(files, selection, ready=False)
    if not build.ok:
        return False
    return event_types_of(build.ruleset)


class RulesFollower:
    """Watches the committed ruleset and calls `apply(event_types)` when its syscall needs change."""

    def __init__(self, cfg: Any, js: Any, apply: Callable[[set[str] | None], None]):
        self.cfg = cfg
        self.js = js
        self.apply = apply
        self.revision = 0
        self.event_types: set[str] | None | bool = False  # False: not known yet
        self.changes = 0

    async def run(self, stop: asyncio.Event) -> None:
        from tiercel.rules.store import RulesStore

        while not stop.is_set():
            try:
                store = RulesStore(await self.js.key_value(bus.RULES_BUCKET))
                watcher = await store.kv.watch("manifest")
                try:
                    quiet = 0
                    while not stop.is_set():
                        try:
                            e = await watcher.updates(timeout=1.0)
                        except TimeoutError:
                            quiet += 1
                            if quiet % 5 == 0:  # a watcher can go quiet after a reconnect: ask
                                rev, man = await store.manifest()
                                if man is not None and rev > self.revision:
                                    await self._load(store, rev)
                            continue
                        quiet = 0
                        if e is None or e.operation in ("DEL", "PURGE") or e.revision <= self.revision:
                            continue
                        await self._load(store, e.revision)
                finally:
                    await watcher.stop()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # broker restart, bucket not there yet: try again
                log.debug("rules follower: %s; retrying", err)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass

    async def _load(self, store: Any, revision: int) -> None:
        from tiercel.rules.store import StoreError

        try:
            snap = await store.snapshot(revision)
        except StoreError as e:
            log.warning("ruleset revision %d not readable: %s", revision, e)
            return
        try:
            types = await asyncio.to_thread(build_event_types, self.cfg, snap.files(), snap.manifest.selection)
        except Exception as e:  # an engine bug must not stop ingest: keep auditing what we audit
            log.warning("ruleset revision %d: computing its event types failed: %s", revision, e)
            return
        self.revision = revision
        if types is False:
            log.warning("ruleset revision %d does not load here; the audited syscalls stay as they are", revision)
            return
        if types == self.event_types:
            return
        try:
            await asyncio.to_thread(self.apply, types)
        except Exception as e:  # the driver stopping under us, audit refusing a rule
            log.warning("ruleset revision %d: the audit rules could not follow: %s", revision, e)
            return
        self.event_types = types
        self.changes += 1
        log.info("ruleset revision %d: auditing for %s", revision,
                 "every event type" if types is None else f"{len(types)} event types")
