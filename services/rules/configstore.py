"""The configs store: live configuration keys in the KV bucket `tiercel_config`.

One KV key per configuration key (`priority`, `outputs.rate`, ...), the value as JSON. Only keys
the schema marks `live` may be stored; every value is validated with the schema before it is
written. A worker's effective configuration is its own (file, environment, `-o`) overlaid with the
store, so a value set here reaches every worker, and unsetting it returns each worker to its own.
Compare-and-set uses the KV revision of the key (0 = the key must not exist yet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import nats.js.errors as jserr

from tiercel.common import bus
from tiercel.common import config as cfgmod
from tiercel.rules.store import Conflict, StoreError

KV_OP = "KV-Operation"


def check_live_key(name: str) -> cfgmod.Key:
    key = cfgmod.KEYS.get(name)
    if key is None:
        raise StoreError("unknown_key", str(cfgmod.unknown_key_error(name)))
    if not key.live:
        raise StoreError("not_live", f"config key '{name}' cannot change on a running system; set it in the "
                                     "configuration file (or -o) and restart")
    return key


def coerce(name: str, value: Any) -> Any:
    """Validate a value for a live key (typed JSON, or text as typed on a command line)."""
    key = check_live_key(name)
    try:
        return key.coerce(value)
    except cfgmod.ConfigError as e:
        raise StoreError("invalid_value", str(e)) from None


@dataclass
class StoredValue:
    value: Any
    revision: int


class ConfigStore:
    """The config bucket seen by one process. `kv` is a nats-py KeyValue."""

    def __init__(self, kv: Any, js: Any):
        self.kv, self.js = kv, js

    async def get(self, name: str) -> StoredValue | None:
        check_live_key(name)
        try:
            e = await self.kv.get(name)
        except jserr.KeyNotFoundError:
            return None
        return StoredValue(json.loads(e.value), e.revision)

    async def all(self) -> dict[str, StoredValue]:
        """Every stored key (invalid entries written around the control plane are skipped)."""
        out: dict[str, StoredValue] = {}
        try:
            names = await self.kv.keys()
        except jserr.NoKeysError:
            return out
        for name in names:
            try:
                e = await self.kv.get(name)
                out[name] = StoredValue(coerce(name, json.loads(e.value)), e.revision)
            except (jserr.KeyNotFoundError, StoreError, ValueError):
                continue
        return out

    async def set(self, name: str, value: Any, expected_revision: int | None = None) -> StoredValue:
        v = coerce(name, value)
        data = json.dumps(v).encode()
        try:
            if expected_revision is None:
                rev = await self.kv.put(name, data)
            elif expected_revision == 0:
                rev = await self.kv.create(name, data)
            else:
                rev = await self.kv.update(name, data, last=expected_revision)
        except jserr.KeyWrongLastSequenceError:
            cur = await self.get(name)
            raise Conflict(expected_revision or 0, cur.revision if cur else 0) from None
        return StoredValue(v, rev)

    async def unset(self, name: str, expected_revision: int | None = None) -> int:
        """Remove the key (workers fall back to their own value). Returns the revision of the
        delete marker, 0 when the key was not set."""
        check_live_key(name)
        cur = await self.get(name)
        if cur is None:
            if expected_revision:
                raise Conflict(expected_revision, 0)
            return 0
        hdrs = {KV_OP: "DEL", "Nats-Expected-Last-Subject-Sequence": str(expected_revision or cur.revision)}
        try:
            ack = await self.js.publish(f"$KV.{bus.CONFIG_BUCKET}.{name}", b"", headers=hdrs)
        except jserr.APIError as e:
            if e.err_code in (10071, 10164):
                now = await self.get(name)
                raise Conflict(expected_revision or cur.revision, now.revision if now else 0) from None
            raise
        return ack.seq


def effective(base: cfgmod.Config, stored: dict[str, Any]) -> cfgmod.Config:
    """`base` overlaid with the stored live values (already validated)."""
    return base.with_values(stored) if stored else base
