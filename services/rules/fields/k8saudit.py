"""The k8s audit `ka.*` fields (k8saudit plugin; spec §5.2), source `k8s_audit`.

The payload is one audit event, parsed. Rules the plugin follows and so do we:
- without a top-level `auditID` every `ka.*` field is missing;
- every field is text: strings raw, other JSON values compact JSON (`403`, `true`, `{"a":1}`);
- a missing path is a missing value (a JSON `null` is the text `null`);
- list fields give one element per array item (an empty result is missing); an `[N]` argument
  restricts them to the N-th container, volume, rule or port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tiercel.rules.condition.runtime import glob_regex
from tiercel.rules.fields.catalog import Field, register
from tiercel.rules.fields.json import MISSING, compact

SOURCE = "k8s_audit"


def _audit(evt: Any) -> dict | None:
    p = evt.payload
    if isinstance(p, dict) and "auditID" in p:
        return p
    return None


def _get(obj: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return MISSING
        obj = obj[k]
    return obj


def _index(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid index argument '{text}': it must be a non-negative integer")
    return int(text)


def _scalar(*path: str) -> Callable[[Any, Any], str | None]:
    def extract(evt: Any, arg: Any) -> str | None:
        a = _audit(evt)
        if a is None:
            return None
        v = _get(a, *path)
        return None if v is MISSING else compact(v)
    return extract


def _items(a: dict, *path: str) -> list | None:
    v = _get(a, *path)
    return v if isinstance(v, list) else None


def _per_item(path: tuple[str, ...], sub: tuple[str, ...] | None,
              convert: Callable[[Any], str | None] = compact,
              flatten: bool = False) -> Callable[[Any, Any], list[str] | None]:
    """A list field: for each item of the array at `path`, the value at `sub` (None: the item
    itself). Items without it are skipped. `flatten`: the value is itself a list to concatenate.
    The argument (an int) picks the N-th item of the array."""

    def values_of(item: Any) -> list[str]:
        v = item if sub is None else _get(item, *sub)
        if v is MISSING:
            return []
        if flatten:
            return [s for s in (convert(x) for x in v) if s is not None] if isinstance(v, list) else []
        s = convert(v)
        return [] if s is None else [s]

    def extract(evt: Any, arg: Any) -> list[str] | None:
        a = _audit(evt)
        if a is None:
            return None
        items = _items(a, *path)
        if items is None:
            return None
        if arg is not None:
            if arg >= len(items):
                return None
            out = values_of(items[arg])
        else:
            out = [s for it in items for s in values_of(it)]
        return out or None

    return extract


def _repository(image: Any) -> str | None:
    if not isinstance(image, str):
        return None
    return image.split(":", 1)[0].split("@", 1)[0]


_CONTAINERS = ("requestObject", "spec", "containers")


def _uri_param(evt: Any, key: str) -> str | None:
    a = _audit(evt)
    if a is None:
        return None
    uri = _get(a, "requestURI")
    if not isinstance(uri, str):
        return None
    q = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    vals = q.get(key)
    return vals[0] if vals else ""


def _first_container(sub: tuple[str, ...], convert: Callable[[Any], str | None] = compact):
    """Legacy `ka.req.container.*`: the N-th container's value, the first without an index."""
    def extract(evt: Any, arg: Any) -> str | None:
        a = _audit(evt)
        if a is None:
            return None
        items = _items(a, *_CONTAINERS)
        i = 0 if arg is None else arg
        if items is None or i >= len(items):
            return None
        v = _get(items[i], *sub)
        return None if v is MISSING else convert(v)
    return extract


def _container_privileged(evt: Any, arg: Any) -> str | None:
    """Legacy `ka.req.container.privileged`: any container privileged, or the N-th one."""
    a = _audit(evt)
    if a is None:
        return None
    items = _items(a, *_CONTAINERS)
    if items is None:
        return None
    if arg is not None:
        if arg >= len(items):
            return None
        v = _get(items[arg], "securityContext", "privileged")
        return None if v is MISSING else compact(v)
    return "true" if any(_get(c, "securityContext", "privileged") is True for c in items) else "false"


def _volume_hostpath(evt: Any, pattern: str) -> str | None:
    """Legacy `ka.req.volume.hostpath[glob]`: whether some hostPath volume matches the glob."""
    a = _audit(evt)
    if a is None:
        return None
    vols = _items(a, "requestObject", "spec", "volumes")
    if vols is None:
        return None
    match = glob_regex(pattern).fullmatch
    for v in vols:
        p = _get(v, "hostPath", "path")
        if isinstance(p, str) and match(p) is not None:
            return "true"
    return "false"


def _has_name(evt: Any, arg: Any) -> str | None:
    return "N/A" if _audit(evt) is not None else None


def _reg(name: str, desc: str, extract, **kw: Any) -> None:
    register(Field(name, "CHARBUF", desc, SOURCE, extract, **kw))


def _reg_list(name: str, desc: str, extract, index: bool = True) -> None:
    kw: dict[str, Any] = {"is_list": True}
    if index:
        kw.update(arg="optional", arg_kind="index", parse_arg=_index)
    _reg(name, desc, extract, **kw)


_reg("ka.auditid", "The unique id of the audit event", _scalar("auditID"))
_reg("ka.stage", "Stage of the request (e.g. RequestReceived, ResponseComplete, etc.)", _scalar("stage"))
_reg("ka.auth.decision", "The authorization decision", _scalar("annotations", "authorization.k8s.io/decision"))
_reg("ka.auth.reason", "The authorization reason", _scalar("annotations", "authorization.k8s.io/reason"))
_reg("ka.user.name", "The user name performing the request", _scalar("user", "username"))
_reg_list("ka.user.groups", "The groups to which the user belongs", _per_item(("user", "groups"), None),
          index=False)
_reg("ka.impuser.name", "The impersonated user name", _scalar("impersonatedUser", "username"))
_reg("ka.verb", "The action being performed", _scalar("verb"))
_reg("ka.uri", "The request URI as sent from client to server", _scalar("requestURI"))
_reg("ka.uri.param", "The value of a given query parameter in the uri (e.g. ka.uri.param[pretty])",
     _uri_param, arg="required", arg_kind="key")
_reg("ka.useragent", "The user agent of the client", _scalar("userAgent"))
_reg_list("ka.sourceips", "The IP addresses of the client", _per_item(("sourceIPs",), None), index=False)
_reg("ka.target.name", "The target object name", _scalar("objectRef", "name"))
_reg("ka.target.namespace", "The target object namespace", _scalar("objectRef", "namespace"))
_reg("ka.target.resource", "The target object resource", _scalar("objectRef", "resource"))
_reg("ka.target.subresource", "The target object subresource", _scalar("objectRef", "subresource"))
_reg("ka.req.binding.role", "For role binding requests, the role being bound",
     _scalar("requestObject", "roleRef", "name"))
_reg_list("ka.req.binding.subjects", "For role binding requests, the subjects of the role",
          _per_item(("requestObject", "subjects"), None), index=False)
_reg("ka.req.binding.subject.has_name", "Deprecated, always returns N/A", _has_name, arg="required",
     arg_kind="key", deprecated=True)
_reg("ka.req.configmap.name", "If the request object is a configmap, the configmap name",
     _scalar("objectRef", "name"))
_reg("ka.req.configmap.obj", "If the request object is a configmap, the entire configmap object",
     _scalar("requestObject", "data"))
for _kind in ("containers", "initContainers", "ephemeralContainers"):
    _path = ("requestObject", "spec", _kind)
    _reg_list(f"ka.req.pod.{_kind}.image", f"When the request object refers to a pod, the {_kind} images",
              _per_item(_path, ("image",)))
    _reg_list(f"ka.req.pod.{_kind}.privileged",
              f"When the request object refers to a pod, whether the {_kind} run privileged",
              _per_item(_path, ("securityContext", "privileged")))
_reg_list("ka.req.pod.containers.image.repository",
          "The same as ka.req.pod.containers.image, only the repository part",
          _per_item(_CONTAINERS, ("image",), _repository))
_reg("ka.req.container.image", "Deprecated: the first (or N-th) container's image",
     _first_container(("image",)), arg="optional", arg_kind="index", parse_arg=_index)
_reg("ka.req.container.image.repository", "Deprecated: the first (or N-th) container's image repository",
     _first_container(("image",), _repository), arg="optional", arg_kind="index", parse_arg=_index)
_reg("ka.req.container.privileged", "Deprecated: whether any (or the N-th) container runs privileged",
     _container_privileged, arg="optional", arg_kind="index", parse_arg=_index)
_reg("ka.req.pod.host_ipc", "When the request object refers to a pod, the value of the hostIPC flag",
     _scalar("requestObject", "spec", "hostIPC"))
_reg("ka.req.pod.host_network", "When the request object refers to a pod, the value of the hostNetwork flag",
     _scalar("requestObject", "spec", "hostNetwork"))
_reg("ka.req.container.host_network", "Deprecated alias of ka.req.pod.host_network",
     _scalar("requestObject", "spec", "hostNetwork"))
_reg("ka.req.pod.host_pid", "When the request object refers to a pod, the value of the hostPID flag",
     _scalar("requestObject", "spec", "hostPID"))
_reg_list("ka.req.pod.volumes.hostpath", "If the request object contains volume definitions, their hostPath paths",
          _per_item(("requestObject", "spec", "volumes"), ("hostPath", "path")))
_reg("ka.req.volume.hostpath", "Deprecated: whether a hostPath volume matches the glob argument",
     _volume_hostpath, arg="required", arg_kind="key")
_reg_list("ka.req.role.rules", "If the request object refers to a role/cluster role, the rules",
          _per_item(("requestObject", "rules"), None), index=False)
_reg_list("ka.req.role.rules.verbs", "If the request object refers to a role/cluster role, the verbs of its rules",
          _per_item(("requestObject", "rules"), ("verbs",), flatten=True))
_reg_list("ka.req.role.rules.resources",
          "If the request object refers to a role/cluster role, the resources of its rules",
          _per_item(("requestObject", "rules"), ("resources",), flatten=True))
_reg("ka.req.service.type", "When the request object refers to a service, the service type",
     _scalar("requestObject", "spec", "type"))
_reg_list("ka.req.service.ports", "When the request object refers to a service, the service's ports",
          _per_item(("requestObject", "spec", "ports"), None))
_reg("ka.resp.name", "The response object name", _scalar("responseObject", "metadata", "name"))
_reg("ka.response.code", "The response code", _scalar("responseStatus", "code"))
_reg("ka.response.reason", "The response reason (usually present only for failures)",
     _scalar("responseStatus", "reason"))
