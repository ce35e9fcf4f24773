"""The control plane's responder: `tiercel.ctl.rules.<op>` and `tiercel.ctl.config.<op>`.

Rules workers share these subjects in the queue group `tiercel-ctl`, so each request is answered
by one worker. A change is validated with the full loader before it is committed; the answer then
waits (at most `wait_s`, default 2 s) until every live worker reports running it, and lists which
revision each live worker runs. Request and reply shapes: docs/bus.md ("Control plane").
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tiercel.common import bus
from tiercel.rules.compiled import Build, selected_names
from tiercel.rules.configstore import ConfigStore, check_live_key
from tiercel.rules.store import (
    Change,
    Conflict,
    RulesStore,
    Selection,
    Snapshot,
    StoreError,
    change_delete,
    change_put,
    change_select,
    sha256,
)

log = logging.getLogger("tiercel.rules")

DEFAULT_WAIT_S = 2.0
MAX_WAIT_S = 30.0


def _opt_int(req: dict[str, Any], key: str) -> int | None:
    """An optional revision; absent or 0 means none (proto3's default in the gRPC API)."""
    v = req.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise StoreError("bad_request", f"'{key}' must be a non-negative integer")
    return v or None


def _str(req: dict[str, Any], key: str) -> str:
    v = req.get(key)
    if not isinstance(v, str) or not v:
        raise StoreError("bad_request", f"'{key}' is required (a non-empty string)")
    return v


class Control:
    """Answers control requests for one worker. `svc` is the RulesService (state and builds)."""

    def __init__(self, svc: Any, rules: RulesStore, configs: ConfigStore):
        self.svc, self.rules, self.configs = svc, rules, configs

    # --- plumbing ------------------------------------------------------------------------------
    async def handle(self, area: str, data: bytes) -> bytes:
        try:
            req = bus.decode_request(data)
        except bus.BadEnvelope as e:
            return bus.encode_reply(False, str(e), code="bad_request")
        op = req["op"]
        fn = getattr(self, f"_{area}_{op}", None)
        if fn is None:
            return bus.encode_reply(False, f"unknown {area} operation {op!r}", code="bad_request")
        try:
            reply = await fn(req)
        except Conflict as e:
            return bus.encode_reply(False, str(e), code=e.code, revision=e.actual)
        except StoreError as e:
            return bus.encode_reply(False, str(e), code=e.code)
        except Exception as e:  # answer, never crash the worker
            log.exception("control request %s.%s failed", area, op)
            return bus.encode_reply(False, f"internal error: {e}", code="internal")
        return bus.encode_reply(**reply)

    async def _wait_workers(self, key: str, revision: int, wait_s: float) -> list[dict[str, Any]]:
        """Wait until every live worker reports `key` (revision | config_revision) >= revision."""
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            workers = self.svc.fleet.workers_json()
            if all(w[key] >= revision for w in workers) or time.monotonic() >= deadline:
                return workers
            await asyncio.sleep(0.02)

    def _wait(self, req: dict[str, Any]) -> float:
        w = req.get("wait_s", DEFAULT_WAIT_S)
        if isinstance(w, bool) or not isinstance(w, int | float):
            raise StoreError("bad_request", "'wait_s' must be a number of seconds")
        return float(w)

    # --- rules ---------------------------------------------------------------------------------
    async def _validate_change(self, change: Change, check_selection: bool) -> Build:
        return await asyncio.to_thread(self.svc.adapter.build, change.files, change.selection,
                                       check_selection=check_selection, ready=False)

    async def _commit(self, req: dict[str, Any], make, check_selection: bool = False) -> dict[str, Any]:
        expected = _opt_int(req, "expected_revision")
        wait_s = self._wait(req)

        async def validate(change: Change) -> Build:
            return await self._validate_change(change, check_selection)

        rev, build = await self.rules.apply(make, validate, expected)
        out: dict[str, Any] = {"load_result": build.load_result_json(), "load_result_text": build.load_result_text()}
        if not rev:
            codes = build.error_codes()
            why = ", ".join(codes) if codes else "; ".join(build.problems)
            return {"ok": False, "error": f"rejected: {why}", "code": "invalid", "revision": 0, **out}
        workers = await self._wait_workers("revision", rev, wait_s)
        return {"ok": True, "revision": rev, "workers": workers, **out}

    async def _rules_list(self, req: dict[str, Any]) -> dict[str, Any]:
        snap = await self.rules.snapshot()
        files = [{"name": n, "revision": r, "size": len(snap.texts[n].encode()), "sha256": sha256(snap.texts[n])}
                 for n, r in snap.manifest.files]
        out: dict[str, Any] = {"ok": True, "revision": snap.revision, "files": files,
                               "selection": [s.to_json() for s in snap.manifest.selection],
                               "workers": self.svc.fleet.workers_json()}
        if req.get("rules", True):
            out["rules"] = await self._describe(snap)
        return out

    async def _describe(self, snap: Snapshot) -> list[dict[str, Any]]:
        if self.svc.revision == snap.revision and self.svc.ruleset is not None:
            rs = self.svc.ruleset
        else:
            b = await asyncio.to_thread(self.svc.adapter.build, snap.files(), snap.manifest.selection, ready=False)
            rs = b.ruleset
        return self.svc.adapter.describe(rs) if rs is not None else []

    async def _rules_get(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _str(req, "name")
        snap = await self.rules.snapshot(_opt_int(req, "revision"))
        if name not in snap.texts:
            raise StoreError("not_found", f"no rules file {name!r} in the store at revision {snap.revision}")
        return {"ok": True, "revision": snap.revision, "name": name, "content": snap.texts[name],
                "sha256": sha256(snap.texts[name])}

    async def _rules_put(self, req: dict[str, Any]) -> dict[str, Any]:
        name, content = _str(req, "name"), req.get("content")
        if not isinstance(content, str):
            raise StoreError("bad_request", "'content' is required (the rules file text)")
        before = req.get("before") or None
        return await self._commit(req, lambda snap: change_put(snap, name, content, before))

    async def _rules_delete(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _str(req, "name")
        return await self._commit(req, lambda snap: change_delete(snap, name))

    async def _select(self, req: dict[str, Any], enable: bool) -> dict[str, Any]:
        if "name_substring" in req and "substring" not in req:  # falco.rules.select_request's name
            req = {**req, "substring": req["name_substring"]}
        given = [(k, req[k]) for k in ("name", "substring", "tag") if req.get(k)]
        if len(given) != 1 or not isinstance(given[0][1], str):
            raise StoreError("bad_request", "give exactly one of 'name', 'substring' or 'tag' (a string)")
        sel = Selection(enable, given[0][0], given[0][1])
        reply = await self._commit(req, lambda snap: change_select(snap, sel), check_selection=True)
        rs = self.svc.ruleset
        if reply["ok"] and rs is not None:
            reply["rules"] = selected_names(rs, sel)
        return reply

    async def _rules_enable(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self._select(req, True)

    async def _rules_disable(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self._select(req, False)

    async def _rules_validate(self, req: dict[str, Any]) -> dict[str, Any]:
        """Validate a file as `put` would (with the files in the store), without committing."""
        name, content = _str(req, "name"), req.get("content")
        if not isinstance(content, str):
            raise StoreError("bad_request", "'content' is required (the rules file text)")
        snap = await self.rules.snapshot()
        change = change_put(snap, name, content, req.get("before") or None)
        build = await self._validate_change(change, False)
        out = {"revision": snap.revision, "load_result": build.load_result_json(),
               "load_result_text": build.load_result_text()}
        if not build.ok:
            return {"ok": False, "error": "invalid: " + ", ".join(build.error_codes()), "code": "invalid", **out}
        return {"ok": True, **out}

    # --- config --------------------------------------------------------------------------------
    async def _config_list(self, req: dict[str, Any]) -> dict[str, Any]:
        from tiercel.common.config import SCHEMA

        stored = await self.configs.all()
        entries = [self._entry(k.name, stored.get(k.name)) for k in SCHEMA if k.live]
        return {"ok": True, "entries": entries, "workers": self.svc.fleet.workers_json()}

    def _entry(self, name: str, s: Any, value: Any = None) -> dict[str, Any]:
        """One key as `config` replies show it: the stored value, or the answering worker's own."""
        from tiercel.common.config import KEYS

        k = KEYS[name]
        return {"key": name, "value": s.value if s else (value if value is not None else self.svc.base_cfg[name]),
                "revision": s.revision if s else 0, "source": "store" if s else "worker", "is_default": s is None,
                "default": k.default, "type": k.type, "allowed": list(k.choices), "description": k.doc}

    async def _config_get(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _str(req, "key")
        check_live_key(name)
        return {"ok": True, **self._entry(name, await self.configs.get(name))}

    async def _config_set(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _str(req, "key")
        if "value" not in req:
            raise StoreError("bad_request", "'value' is required")
        s = await self.configs.set(name, req["value"], _opt_int(req, "expected_revision"))
        workers = await self._wait_workers("config_revision", s.revision, self._wait(req))
        return {"ok": True, **self._entry(name, s), "workers": workers}

    async def _config_unset(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _str(req, "key")
        rev = await self.configs.unset(name, _opt_int(req, "expected_revision"))
        workers = await self._wait_workers("config_revision", rev, self._wait(req)) if rev else \
            self.svc.fleet.workers_json()
        return {"ok": True, **self._entry(name, None), "revision": rev, "workers": workers}
