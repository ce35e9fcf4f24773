"""`falco.rules.service` and `falco.configs.service`: unary calls mapped onto the control plane.

Each call is one NATS request to `tiercel.ctl.rules.<op>` / `tiercel.ctl.config.<op>`, answered by
a rules worker (queue group `tiercel-ctl`); docs/bus.md ("Control request and reply") defines the
JSON of every op. This module only translates: proto → request JSON, reply JSON → proto or a gRPC
status. A reply's `code` picks the status; a refused rules change (`invalid`) is INVALID_ARGUMENT
with the Falco load results as rich-status details (a `falco.rules.change_response`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import nats.errors
import yaml

from tiercel.api import rpc
from tiercel.api.security import Authorizer
from tiercel.common import bus, config
from tiercel.pb.falco import configs_pb2, rules_pb2

log = logging.getLogger("tiercel.api")

RULES_SERVICE = "falco.rules.service"
CONFIGS_SERVICE = "falco.configs.service"

# Reply `code` (docs/bus.md) -> gRPC status.
CODES = {
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_name": grpc.StatusCode.INVALID_ARGUMENT,
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "unknown_key": grpc.StatusCode.INVALID_ARGUMENT,
    "invalid_value": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.ABORTED,
    "not_live": grpc.StatusCode.FAILED_PRECONDITION,
    "busy": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}
MAX_NAME = 255


class ControlError(Exception):
    """A failed control request, as a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str, reply: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class ControlClient:
    """NATS request/reply to the control plane, with the bus envelopes."""

    def __init__(self, nc: Any, timeout: float = 5.0):
        self.nc = nc
        self.timeout = timeout

    async def call(self, area: str, op: str, **args: Any) -> dict[str, Any]:
        subject = bus.control_subject(area, op)
        try:
            msg = await self.nc.request(subject, bus.encode_request(op, **args), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise ControlError(grpc.StatusCode.UNAVAILABLE,
                               f"no rules service answers on {subject}; start `tiercel rules serve`") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise ControlError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"the rules service did not answer {subject} within {self.timeout:g}s") from None
        except nats.errors.ConnectionClosedError:
            raise ControlError(grpc.StatusCode.UNAVAILABLE, "not connected to NATS") from None
        try:
            reply = bus.decode_reply(msg.data)
        except bus.BadEnvelope as e:
            raise ControlError(grpc.StatusCode.INTERNAL, f"bad control reply on {subject}: {e}") from None
        if not reply["ok"]:
            code = CODES.get(str(reply.get("code", "")), grpc.StatusCode.FAILED_PRECONDITION)
            raise ControlError(code, str(reply.get("error") or f"{area} {op} failed"), reply)
        return reply


# ----------------------------------------------------------------------------------------------
# JSON -> proto
# ----------------------------------------------------------------------------------------------


def _u(v: Any) -> int:
    return v if isinstance(v, int) and v >= 0 else 0


def load_message(m: dict[str, Any]) -> rules_pb2.load_message:
    out = rules_pb2.load_message(code=str(m.get("code", "")), codedesc=str(m.get("codedesc", "")),
                                 message=str(m.get("message", "")))
    ctx = m.get("context") or {}
    for loc in ctx.get("locations") or []:
        pos = loc.get("position") or {}
        out.locations.add(item_type=str(loc.get("item_type", "")), item_name=str(loc.get("item_name", "")),
                          position=rules_pb2.position(name=str(pos.get("name", "")), line=int(pos.get("line", 0)),
                                                      column=int(pos.get("column", 0)),
                                                      offset=int(pos.get("offset", 0))))
    out.snippet = str(ctx.get("snippet", ""))
    # The item the message is about: the innermost location that names one.
    for loc in reversed(out.locations):
        if loc.item_name:
            out.item_type, out.item_name = loc.item_type, loc.item_name
            break
    return out


def load_result(r: dict[str, Any]) -> rules_pb2.load_result:
    out = rules_pb2.load_result(name=str(r.get("name", "")), successful=bool(r.get("successful", False)),
                                schema_valid=bool(r.get("schema_valid", True)))
    out.errors.extend(load_message(m) for m in r.get("errors") or [])
    out.warnings.extend(load_message(m) for m in r.get("warnings") or [])
    out.schema_warnings.extend(str(w) for w in r.get("schema_warnings") or [])
    return out


def workers(reply: dict[str, Any]) -> list[rules_pb2.worker_revision]:
    return [rules_pb2.worker_revision(worker=str(w.get("instance", w.get("worker", ""))), revision=_u(w.get("revision")),
                                      host=str(w.get("host", "")), config_revision=_u(w.get("config_revision")),
                                      state=str(w.get("state", ""))) for w in reply.get("workers") or []]


def load_results(reply: dict[str, Any]) -> list[rules_pb2.load_result]:
    """`load_result` of a reply (Falco's -V JSON object) as one message per file."""
    lr = reply.get("load_result") or {}
    items = lr.get("falco_load_results", []) if isinstance(lr, dict) else lr
    return [load_result(r) for r in items or [] if isinstance(r, dict)]


def change_response(reply: dict[str, Any]) -> rules_pb2.change_response:
    out = rules_pb2.change_response(ok=bool(reply.get("ok")), revision=_u(reply.get("revision")),
                                    load_result_text=str(reply.get("load_result_text", "")))
    out.results.extend(load_results(reply))
    out.workers.extend(workers(reply))
    out.rules.extend(str(r) for r in reply.get("rules") or [])
    return out


def rule_info(r: dict[str, Any]) -> rules_pb2.rule_info:
    return rules_pb2.rule_info(name=str(r.get("name", "")), file=str(r.get("file", "")),
                               source=str(r.get("source", "")), priority=str(r.get("priority", "")),
                               tags=[str(t) for t in r.get("tags") or []], enabled=bool(r.get("enabled", True)),
                               event_types=[str(t) for t in r.get("event_types") or []],
                               description=str(r.get("desc", r.get("description", ""))),
                               loaded=bool(r.get("loaded", False)))


def entry(e: dict[str, Any]) -> configs_pb2.entry:
    """An entry of the control plane (docs/bus.md) as a `falco.configs.entry`."""
    name = str(e.get("key", ""))
    key = config.KEYS.get(name)
    source = str(e.get("source", ""))
    is_default = e["is_default"] if "is_default" in e else source != "store"
    return configs_pb2.entry(
        key=name, value=json.dumps(e.get("value"), ensure_ascii=False), revision=_u(e.get("revision")),
        is_default=bool(is_default), source=source,
        description=str(e.get("description", e.get("doc", key.doc if key else ""))),
        type=str(e.get("type", key.type if key else "")),
        allowed=[str(a) for a in e.get("allowed", key.choices if key else ()) or ()],
        default_value=json.dumps(e["default"] if "default" in e else (key.default if key else None),
                                 ensure_ascii=False))


def _cas(req: Any, **args: Any) -> dict[str, Any]:
    """Request arguments with `expected_revision` only when the client set it."""
    if req.HasField("expected_revision"):
        args["expected_revision"] = req.expected_revision
    return args


# ----------------------------------------------------------------------------------------------
# Services
# ----------------------------------------------------------------------------------------------


class _Base:
    def __init__(self, control: ControlClient, auth: Authorizer):
        self.control = control
        self.auth = auth

    async def _call(self, context: grpc.aio.ServicerContext, area: str, op: str, **args: Any) -> dict[str, Any]:
        try:
            return await self.control.call(area, op, **args)
        except ControlError as e:
            details = []
            if area == "rules" and (e.reply.get("load_result") or e.reply.get("workers")):
                details.append(change_response(e.reply))
            await rpc.abort_with(context, e.code, str(e), *details)
            raise  # unreachable

    @staticmethod
    async def _name(context: grpc.aio.ServicerContext, name: str, what: str = "name") -> str:
        if not name or len(name) > MAX_NAME or "/" in name or name.startswith(".") or "\x00" in name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{what} {name!r}: a rules file name is 1-{MAX_NAME} characters, without '/', "
                                "not starting with '.'")
        return name


class RulesService(_Base):
    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(RULES_SERVICE, {
            "list": rpc.unary_unary(self.list, rules_pb2.list_response),
            "get": rpc.unary_unary(self.get, rules_pb2.rules_file),
            "put": rpc.unary_unary(self.put, rules_pb2.change_response),
            "delete": rpc.unary_unary(self.delete, rules_pb2.change_response),
            "enable": rpc.unary_unary(self.enable, rules_pb2.change_response),
            "disable": rpc.unary_unary(self.disable, rules_pb2.change_response),
            "validate": rpc.unary_unary(self.validate, rules_pb2.change_response),
        })

    async def list(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.list_response:
        await rpc.parse(rules_pb2.list_request, data, context)
        reply = await self._call(context, "rules", "list")
        out = rules_pb2.list_response(revision=_u(reply.get("revision")))
        out.files.extend(rules_pb2.rules_file(name=str(f.get("name", "")), revision=_u(f.get("revision")),
                                              sha256=str(f.get("sha256", "")), size=_u(f.get("size")))
                         for f in reply.get("files") or [])
        out.rules.extend(rule_info(r) for r in reply.get("rules") or [])
        out.workers.extend(workers(reply))
        return out

    async def get(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.rules_file:
        req = await rpc.parse(rules_pb2.get_request, data, context)
        args: dict[str, Any] = {"name": await self._name(context, req.name)}
        if req.revision:
            args["revision"] = req.revision
        reply = await self._call(context, "rules", "get", **args)
        content = str(reply.get("content", ""))
        return rules_pb2.rules_file(name=str(reply.get("name", req.name)), content=content,
                                    revision=_u(reply.get("revision")), sha256=str(reply.get("sha256", "")),
                                    size=len(content.encode()))

    async def put(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        req = await rpc.parse(rules_pb2.put_request, data, context)
        await self.auth.require_admin(context, "rules put")
        args = _cas(req, name=await self._name(context, req.name), content=req.content)
        if req.before:
            args["before"] = await self._name(context, req.before, "before")
        return change_response(await self._call(context, "rules", "put", **args))

    async def validate(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        req = await rpc.parse(rules_pb2.put_request, data, context)
        args: dict[str, Any] = {"name": await self._name(context, req.name), "content": req.content}
        if req.before:
            args["before"] = await self._name(context, req.before, "before")
        return change_response(await self._call(context, "rules", "validate", **args))

    async def delete(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        req = await rpc.parse(rules_pb2.delete_request, data, context)
        await self.auth.require_admin(context, "rules delete")
        args = _cas(req, name=await self._name(context, req.name))
        return change_response(await self._call(context, "rules", "delete", **args))

    async def _select(self, op: str, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        req = await rpc.parse(rules_pb2.select_request, data, context)
        await self.auth.require_admin(context, f"rules {op}")
        which = req.WhichOneof("selector")
        value = getattr(req, which) if which else ""
        if not value:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"rules {op}: give one selector (name, name_substring or tag), not empty")
        arg = {"name": "name", "name_substring": "substring", "tag": "tag"}[which]
        return change_response(await self._call(context, "rules", op, **_cas(req, **{arg: value})))

    async def enable(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        return await self._select("enable", data, context)

    async def disable(self, data: bytes, context: grpc.aio.ServicerContext) -> rules_pb2.change_response:
        return await self._select("disable", data, context)


class ConfigsService(_Base):
    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(CONFIGS_SERVICE, {
            "list": rpc.unary_unary(self.list, configs_pb2.list_response),
            "get": rpc.unary_unary(self.get, configs_pb2.entry),
            "set": rpc.unary_unary(self.set, configs_pb2.entry),
            "unset": rpc.unary_unary(self.unset, configs_pb2.entry),
        })

    @staticmethod
    async def _key(context: grpc.aio.ServicerContext, name: str, live: bool = False) -> config.Key:
        key = config.KEYS.get(name)
        if key is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(config.unknown_key_error(name)))
        if live and not key.live:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"config key '{name}' cannot change while running; set it in the config file "
                                "and restart")
        return key

    async def list(self, data: bytes, context: grpc.aio.ServicerContext) -> configs_pb2.list_response:
        await rpc.parse(configs_pb2.list_request, data, context)
        reply = await self._call(context, "config", "list")
        return configs_pb2.list_response(entries=[entry(e) for e in reply.get("entries") or []])

    async def get(self, data: bytes, context: grpc.aio.ServicerContext) -> configs_pb2.entry:
        req = await rpc.parse(configs_pb2.get_request, data, context)
        await self._key(context, req.key)
        return entry(await self._call(context, "config", "get", key=req.key))

    async def set(self, data: bytes, context: grpc.aio.ServicerContext) -> configs_pb2.entry:
        req = await rpc.parse(configs_pb2.set_request, data, context)
        await self.auth.require_admin(context, "configs set")
        key = await self._key(context, req.key, live=True)
        try:
            raw = yaml.safe_load(req.value) if req.value.strip() else None
        except yaml.YAMLError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"config key '{req.key}': value is not YAML/JSON: {getattr(e, 'problem', e)}")
        try:
            value = key.coerce(raw)
        except config.ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        reply = await self._call(context, "config", "set", **_cas(req, key=req.key, value=value))
        return entry({"source": "store", **reply})

    async def unset(self, data: bytes, context: grpc.aio.ServicerContext) -> configs_pb2.entry:
        req = await rpc.parse(configs_pb2.unset_request, data, context)
        await self.auth.require_admin(context, "configs unset")
        await self._key(context, req.key, live=True)
        reply = await self._call(context, "config", "unset", **_cas(req, key=req.key))
        return entry({"source": "worker", **reply})
