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


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create Tiercel's streams and KV buckets, or bring their limits up to date."""
    for spec in bus.STREAMS:
        cfg = _stream_config(spec, replicas)
        try:
            await js.add_stream(cfg)
        except BadRequestError:
            # Exists with another config: update what can be updated (limits), keep the data.
            await js.update_stream(cfg)
    for bucket in bus.KV_BUCKETS:
        try:
            await js.key_value(bucket)
        except (NotFoundError, nats.js.errors.BucketNotFoundError):
            await js.create_key_value(api.KeyValueConfig(bucket=bucket, history=16, replicas=replicas))
