"""The rules store: rules files in the KV bucket `tiercel_rules`, committed as one revision.

Layout of the bucket:

- `file.<name>`: the text of one rules file (a new KV revision per put);
- `manifest`: JSON naming the files of the live ruleset, in load order, each at the KV revision
  of its text, and the enable/disable selections applied after loading, in order.

The manifest is the commit point: a change writes the new file text first (not live yet, as no
manifest names that revision), then replaces the manifest with compare-and-set on its previous
revision. The ruleset revision every worker reports is the manifest's KV revision, so a ruleset
is always a consistent set of files, and two concurrent changes cannot both win (the loser
re-reads, re-validates and retries, or fails with a conflict when the caller named a revision).

Every change is validated with the full loader before it is committed (`Validator`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats.js.errors as jserr

MANIFEST_KEY = "manifest"
FILE_PREFIX = "file."
SELECTION_KINDS = ("name", "substring", "tag")
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-=.]*$")
MAX_NAME = 200


class StoreError(Exception):
    """A request the store refuses; `code` is a short machine-readable reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Conflict(StoreError):
    def __init__(self, expected: int, actual: int):
        super().__init__("conflict", f"revision conflict: expected revision {expected}, the store is at {actual}")
        self.expected, self.actual = expected, actual


def check_file_name(name: str) -> str:
    """Rules file names become KV keys: letters, digits, `_ - = .`, not starting with a dot."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _NAME_OK.match(name) \
            or name.endswith(".") or ".." in name:
        raise StoreError("bad_name", f"invalid rules file name {name!r}: use letters, digits, '_', '-', '=' "
                                     f"and '.' (not leading, trailing or doubled), at most {MAX_NAME} characters")
    return name


@dataclass(frozen=True)
class Selection:
    """One enable/disable step applied after loading, as falco.yaml's `rules:` entries."""

    enable: bool
    kind: str  # name (exact, `*` wildcards) | substring | tag
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"enable": self.enable, "kind": self.kind, "value": self.value}

    @classmethod
    def from_json(cls, o: Any) -> Selection:
        if not isinstance(o, dict) or o.get("kind") not in SELECTION_KINDS or not isinstance(o.get("value"), str) \
                or not isinstance(o.get("enable"), bool):
            raise StoreError("bad_selection", f"invalid selection {o!r}")
        return cls(o["enable"], o["kind"], o["value"])

    def describe(self) -> str:
        verb = "enable" if self.enable else "disable"
        return f"{verb} rules with {self.kind} {self.value!r}"


@dataclass
class Manifest:
    files: list[tuple[str, int]] = field(default_factory=list)  # (name, KV revision of file.<name>)
    selection: list[Selection] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps({"v": 1, "files": [{"name": n, "revision": r} for n, r in self.files],
                           "selection": [s.to_json() for s in self.selection]},
                          separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            o = json.loads(data)
            files = [(str(f["name"]), int(f["revision"])) for f in o["files"]]
            sel = [Selection.from_json(s) for s in o.get("selection", [])]
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError("bad_manifest", f"the rules manifest in the store is not valid: {e}") from None
        return cls(files, sel)

    def names(self) -> list[str]:
        return [n for n, _ in self.files]


@dataclass
class Snapshot:
    """A committed ruleset: revision (the manifest's KV revision, 0 = nothing committed yet)."""

    revision: int
    manifest: Manifest
    texts: dict[str, str]  # name -> text

    def files(self) -> list[tuple[str, str]]:
        """(name, text) in load order."""
        return [(n, self.texts[n]) for n in self.manifest.names()]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Validator: (files in load order, selections) -> a build result with `.ok` and the load results.
Validator = Callable[[list[tuple[str, str]], list[Selection]], Any]


@dataclass
class Change:
    """A change to the ruleset, computed from the current snapshot (pure)."""

    files: list[tuple[str, str]]  # full new file list, (name, text), load order
    selection: list[Selection]
    write: dict[str, str] = field(default_factory=dict)  # files whose text must be written
    remove: list[str] = field(default_factory=list)  # file keys to delete after commit


def change_put(snap: Snapshot, name: str, text: str, before: str | None = None) -> Change:
    """Add a file (at the end, or before another), or replace one in place."""
    check_file_name(name)
    if not isinstance(text, str):
        raise StoreError("bad_request", "rules file content must be text")
    files = snap.files()
    names = [n for n, _ in files]
    if name in names:
        files[names.index(name)] = (name, text)
    elif before:
        if before not in names:
            raise StoreError("not_found", f"no rules file {before!r} in the store (put --before)")
        files.insert(names.index(before), (name, text))
    else:
        files.append((name, text))
    write = {} if snap.texts.get(name) == text else {name: text}
    return Change(files, list(snap.manifest.selection), write=write)


def change_delete(snap: Snapshot, name: str) -> Change:
    if name not in snap.texts:
        raise StoreError("not_found", f"no rules file {name!r} in the store")
    files = [(n, t) for n, t in snap.files() if n != name]
    return Change(files, list(snap.manifest.selection), remove=[name])


def change_select(snap: Snapshot, sel: Selection) -> Change:
    """Append a selection; an earlier one with the same kind and value is superseded."""
    if sel.kind not in SELECTION_KINDS:
        raise StoreError("bad_request", f"unknown selection kind {sel.kind!r}; expected one of "
                                        f"{', '.join(SELECTION_KINDS)}")
    if not sel.value:
        raise StoreError("bad_request", "an enable/disable selection needs a non-empty value")
    kept = [s for s in snap.manifest.selection if (s.kind, s.value) != (sel.kind, sel.value)]
    return Change(snap.files(), [*kept, sel])


class RulesStore:
    """The rules bucket seen by one process. `kv` is a nats-py KeyValue."""

    def __init__(self, kv: Any):
        self.kv = kv

    async def manifest(self) -> tuple[int, Manifest | None]:
        try:
            e = await self.kv.get(MANIFEST_KEY)
        except jserr.KeyNotFoundError:
            return 0, None
        return e.revision, Manifest.decode(e.value)

    async def snapshot(self, revision: int | None = None) -> Snapshot:
        """The committed ruleset (latest, or the manifest at `revision`)."""
        if revision:
            try:
                e = await self.kv.get(MANIFEST_KEY, revision=revision)
            except jserr.KeyNotFoundError:
                raise StoreError("not_found", f"ruleset revision {revision} is not in the store") from None
            rev, man = e.revision, Manifest.decode(e.value)
        else:
            rev, man = await self.manifest()
            if man is None:
                return Snapshot(0, Manifest(), {})
        texts = {}
        for name, frev in man.files:
            try:
                e = await self.kv.get(FILE_PREFIX + name, revision=frev)
            except jserr.KeyNotFoundError:
                raise StoreError("bad_manifest", f"rules file {name!r} at revision {frev} is missing from "
                                                 "the store") from None
            texts[name] = e.value.decode("utf-8", errors="replace")
        return Snapshot(rev, man, texts)

    async def commit(self, base: Snapshot, change: Change) -> int:
        """Write the change's texts, then swap the manifest (CAS on `base.revision`)."""
        revs = dict(base.manifest.files)
        for name, text in change.write.items():
            revs[name] = await self.kv.put(FILE_PREFIX + name, text.encode())
        man = Manifest([(n, revs[n]) for n, _ in change.files], change.selection)
        if base.revision == 0:
            rev = await self.kv.create(MANIFEST_KEY, man.encode())
        else:
            rev = await self.kv.update(MANIFEST_KEY, man.encode(), last=base.revision)
        for name in change.remove:
            if name not in man.names():
                try:
                    await self.kv.delete(FILE_PREFIX + name)
                except jserr.Error:
                    pass  # an orphaned text is harmless: no manifest names it
        return rev

    async def apply(self, make: Callable[[Snapshot], Change], validate: Callable[[Change], Awaitable[Any]],
                    expected_revision: int | None = None, attempts: int = 5) -> tuple[int, Any]:
        """Read, change, validate, commit; retry on a concurrent commit unless a revision was named.

        Returns (new revision, build result). A rejected change returns revision 0 and the result
        (whose `.ok` is False); nothing is written.
        """
        for _ in range(attempts):
            snap = await self.snapshot()
            if expected_revision is not None and snap.revision != expected_revision:
                raise Conflict(expected_revision, snap.revision)
            change = make(snap)
            result = await validate(change)
            if not result.ok:
                return 0, result
            try:
                return await self.commit(snap, change), result
            except jserr.KeyWrongLastSequenceError:
                if expected_revision is not None:
                    rev, _ = await self.manifest()
                    raise Conflict(expected_revision, rev) from None
                continue
        raise StoreError("busy", f"the ruleset changed {attempts} times while this change was validated; retry")

    async def seed(self, files: list[tuple[str, str]]) -> int:
        """Commit `files` as the first ruleset if the store is empty. Returns the revision seeded,
        or 0 when another process had seeded (or anything had been committed) already."""
        rev, man = await self.manifest()
        if man is not None:
            return 0
        change = Change(files, [], write=dict(files))
        try:
            return await self.commit(Snapshot(0, Manifest(), {}), change)
        except jserr.KeyWrongLastSequenceError:
            return 0
