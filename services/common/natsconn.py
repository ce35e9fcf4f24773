"""Connecting to NATS with the configured auth and TLS, and declaring Tiercel's JetStream objects."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from tiercel.common import bus
from tiercel.common.config import Config
from tiercel.common.log import redact

log = logging.getLogger("tiercel.nats")


class NatsUnavailable(RuntimeError):
    """The configured NATS server cannot be reached, or refused our credentials (`auth`)."""

    def __init__(self, message: str, auth: bool = False):
        super().__init__(message)
        self.auth = auth


def connect_options(cfg: Config, name: str) -> dict[str, Any]:
    """nats-py connect() keyword arguments from the configuration."""
    servers = [u.strip() for u in cfg["nats.url"].split(",") if u.strip()]
    opts: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "allow_reconnect": True,
        "pending_size": 32 << 20,
        "flusher_queue_size": 4096,
    }
    if cfg["nats.user"]:
        opts["user"] = cfg["nats.user"]
        opts["password"] = cfg["nats.password"]
    if cfg["nats.token"]:
        opts["token"] = cfg["nats.token"]
    if cfg["nats.creds"]:
        opts["user_credentials"] = cfg["nats.creds"]
    if cfg["nats.nkey_seed"]:
        opts["nkeys_seed"] = cfg["nats.nkey_seed"]
    if cfg["nats.tls.ca"] or cfg["nats.tls.cert"] or any(s.startswith("tls://") for s in servers):
        ctx = ssl.create_default_context(cafile=cfg["nats.tls.ca"] or None)
        if cfg["nats.tls.cert"]:
            ctx.load_cert_chain(cfg["nats.tls.cert"], cfg["nats.tls.key"] or None)
        opts["tls"] = ctx
    return opts


async def connect(cfg: Config, name: str, *, first_attempt_timeout: float = 5.0, **extra: Any) -> NATS:
    """Connect, failing with one clear NatsUnavailable when the server cannot be reached at start."""
    opts = connect_options(cfg, name)
    opts.update(extra)
    errors: list[str] = []

    async def _err(e: Exception) -> None:
        errors.append(str(e) or type(e).__name__)
        log.debug("nats: %s", e)

    opts.setdefault("error_cb", _err)
    try:
        return await asyncio.wait_for(nats.connect(**opts), first_attempt_timeout)
    except (TimeoutError, OSError, nats.errors.NoServersError, nats.errors.Error) as e:
        why = errors[-1] if errors else (str(e) or type(e).__name__)
        where = cfg["nats.url"] or "(embedded)"
        refused = [x for x in errors if "authorization" in x.lower() or "authentication" in x.lower()]
        if refused:  # the server answered and refused us: that, not a later reset, is the reason
            why = refused[-1]
            raise NatsUnavailable(redact(f"cannot connect to NATS at {where}: {why}; check the credentials "
                                         "(nats.user and nats.password, nats.token, nats.nkey_seed or nats.creds)"),
                                  auth=True) from None
        raise NatsUnavailable(redact(f"cannot connect to NATS at {where}: {why}")) from None


def _stream_config(spec: bus.StreamSpec, replicas: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=api.RetentionPolicy(spec.retention),
        max_bytes=spec.max_bytes,
        max_age=spec.max_age_s,
        discard=api.DiscardPolicy(spec.discard),
        duplicate_window=spec.duplicate_window_s,
        max_msg_size=spec.max_msg_size,
        storage=api.StorageType.FILE,
        num_replicas=replicas,
    )


# What an operator may tune on an existing stream (`nats stream edit`) and Tiercel leaves alone.
_OPERATOR_LIMITS = ("max_bytes", "max_age", "max_msg_size", "max_msgs", "max_msgs_per_subject")


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create Tiercel's streams and KV buckets when they are missing.

    An existing stream keeps the limits it was given (disk budget, age, message size: tune them
    with `nats stream edit`, every service restart keeps them) and its replicas unless `replicas`
    asks for more; what the contract depends on (subjects, retention, discard policy, duplicate
    window) is put back if it differs."""
    for spec in bus.STREAMS:
        cfg = _stream_config(spec, replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
                continue
            except BadRequestError:  # created meanwhile by another service
                info = await js.stream_info(spec.name)
        cur = info.config
        want = cfg.evolve(**{k: getattr(cur, k) for k in _OPERATOR_LIMITS},
                          num_replicas=max(replicas, cur.num_replicas or 1))
        if any(getattr(want, k) != getattr(cur, k) for k in
               ("subjects", "retention", "discard", "duplicate_window", "num_replicas")):
            await js.update_stream(want)
    for bucket in bus.KV_BUCKETS:
        try:
            await js.key_value(bucket)
        except (NotFoundError, nats.js.errors.BucketNotFoundError):
            await js.create_key_value(api.KeyValueConfig(bucket=bucket, history=16, replicas=replicas))
