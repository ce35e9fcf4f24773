"""`falco.version.service`: Tiercel's version, the engine version it implements, the fields checksum."""

from __future__ import annotations

import functools
import hashlib
import importlib
import re

import grpc

from tiercel import ENGINE_VERSION, __version__
from tiercel.api import rpc
from tiercel.pb.falco import version_pb2

SERVICE = "falco.version.service"
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")


def catalog_lines() -> list[str]:
    """One line per field of the field catalog: source, name, type, argument, flags."""
    from tiercel.rules.fields import catalog

    catalog._load_builtin()
    lines = set()
    for source, table in catalog._FIELDS.items():
        if source == "alert":  # the API's subscription filters, not a rules source
            continue
        for name, f in table.items():
            flags = ",".join(k for k in ("is_list", "ancestors", "filter_only", "deprecated") if getattr(f, k))
            lines.add(f"{source} {name} {f.type} {f.arg} {f.arg_kind} {flags}")
    return sorted(lines)


def event_names() -> list[str]:
    """Event type names Tiercel knows (from the event table, once it is installed)."""
    try:
        table = importlib.import_module("tiercel.common.eventtable")
        return sorted(table.event_type_names())
    except (ImportError, AttributeError):
        return []


@functools.cache
def fields_checksum() -> str:
    """sha256 over the engine version, the sorted catalog lines and the event names.

    Like Falco's engine_fields_checksum it changes exactly when the set of fields a rules file can
    use changes, so a tool can tell whether rules validated elsewhere will load here.
    """
    h = hashlib.sha256()
    h.update(".".join(map(str, ENGINE_VERSION)).encode() + b"\n")
    for line in catalog_lines():
        h.update(line.encode() + b"\n")
    for name in event_names():
        h.update(b"event " + name.encode() + b"\n")
    return h.hexdigest()


def version_response() -> version_pb2.response:
    r = version_pb2.response(version=__version__)
    m = _SEMVER.match(__version__)
    if m:
        r.major, r.minor, r.patch = int(m[1]), int(m[2]), int(m[3])
        r.prerelease, r.build = m[4] or "", m[5] or ""
    r.engine_major, r.engine_minor, r.engine_patch = ENGINE_VERSION
    r.engine_version = ".".join(map(str, ENGINE_VERSION))
    r.engine_fields_checksum = fields_checksum()
    return r


class VersionService:
    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "version": rpc.unary_unary(self.version, version_pb2.response)})

    async def version(self, data: bytes, context: grpc.aio.ServicerContext) -> version_pb2.response:
        await rpc.parse(version_pb2.request, data, context)
        return version_response()
