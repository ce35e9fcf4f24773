"""The rules and configs stores on a real nats-server: validation before commit, compare-and-set,
concurrent first starts seeding once, and the manifest as the single commit point."""

from __future__ import annotations

import asyncio

import pytest

from tiercel.common import bus
from tiercel.common.config import Config
from tiercel.common.natsconn import connect, ensure_streams
from tiercel.rules.compiled import EngineAdapter
from tiercel.rules.configstore import ConfigStore
from tiercel.rules.store import (
    Conflict,
    RulesStore,
    Selection,
    StoreError,
    change_delete,
    change_put,
    change_select,
    check_file_name,
)

LIST_A = "- list: shells\n  items: [bash, sh]\n"
LIST_B = "- list: shells\n  items: [zsh]\n  append: true\n"
BROKEN = "- list: shells\n  items: [bash\n"


async def _open(url: str):
    nc = await connect(Config({"nats.url": url}), "test")
    js = nc.jetstream()
    await ensure_streams(js)
    return nc, js


def test_file_names_become_kv_keys():
    assert check_file_name("falco_rules.local.yaml") == "falco_rules.local.yaml"
    for bad in ("", ".hidden", "a b.yaml", "a/b.yaml", "x..yaml", "end.", "é.yaml"):
        with pytest.raises(StoreError):
            check_file_name(bad)


async def test_concurrent_first_starts_seed_once(nats_broker):
    conns = [await _open(nats_broker.url) for _ in range(4)]
    stores = [RulesStore(await js.key_value(bus.RULES_BUCKET)) for _, js in conns]
    revs = await asyncio.gather(*(s.seed([("a.yaml", LIST_A)]) for s in stores))
    assert sum(1 for r in revs if r) == 1
    snap = await stores[0].snapshot()
    assert snap.revision == max(revs) and snap.files() == [("a.yaml", LIST_A)]
    assert await stores[1].seed([("other.yaml", LIST_B)]) == 0  # never over a committed ruleset
    for nc, _ in conns:
        await nc.close()


async def test_changes_validate_then_commit_with_compare_and_set(nats_broker):
    nc, js = await _open(nats_broker.url)
    store = RulesStore(await js.key_value(bus.RULES_BUCKET))
    adapter = EngineAdapter(Config(), "h")

    async def validate(change):
        return adapter.build(change.files, change.selection, check_selection=False, ready=False)

    rev1, b = await store.apply(lambda s: change_put(s, "a.yaml", LIST_A), validate)
    assert rev1 and b.ok
    rev2, b = await store.apply(lambda s: change_put(s, "b.yaml", LIST_B), validate)
    assert rev2 > rev1 and [n for n, _ in (await store.snapshot()).files()] == ["a.yaml", "b.yaml"]
    # A file with an error is refused with its load result; nothing changes.
    rev, b = await store.apply(lambda s: change_put(s, "c.yaml", BROKEN), validate)
    assert rev == 0 and not b.ok and b.error_codes() == ["LOAD_ERR_YAML_PARSE"]
    assert (await store.snapshot()).revision == rev2
    # Deleting a.yaml leaves b.yaml appending to a list that no longer exists: refused.
    rev, b = await store.apply(lambda s: change_delete(s, "a.yaml"), validate)
    assert rev == 0 and not b.ok
    # Compare-and-set on the ruleset revision.
    with pytest.raises(Conflict) as e:
        await store.apply(lambda s: change_put(s, "a.yaml", LIST_A + "# x\n"), validate, expected_revision=rev1)
    assert e.value.actual == rev2
    rev3, _ = await store.apply(lambda s: change_put(s, "a.yaml", LIST_A + "# x\n"), validate, expected_revision=rev2)
    snap = await store.snapshot()
    assert snap.revision == rev3 and snap.texts["a.yaml"].endswith("# x\n")
    # Older revisions stay readable.
    old = await store.snapshot(rev2)
    assert old.texts["a.yaml"] == LIST_A
    # Selections persist in order; the same kind and value replaces the earlier one.
    s1 = change_select(snap, Selection(False, "tag", "network"))
    s2 = change_select(type(snap)(snap.revision, type(snap.manifest)(snap.manifest.files, s1.selection), snap.texts),
                       Selection(True, "tag", "network"))
    assert s2.selection == [Selection(True, "tag", "network")]
    await nc.close()


async def test_config_store_validates_and_compares_revisions(nats_broker):
    nc, js = await _open(nats_broker.url)
    cs = ConfigStore(await js.key_value(bus.CONFIG_BUCKET), js)
    assert await cs.get("priority") is None
    v = await cs.set("priority", "ERROR")
    assert v.value == "error" and v.revision > 0
    assert (await cs.get("priority")).value == "error"
    with pytest.raises(StoreError) as e:
        await cs.set("priority", "loud")
    assert e.value.code == "invalid_value"
    with pytest.raises(StoreError) as e:
        await cs.set("nats.url", "nats://x:4222")
    assert e.value.code == "not_live"
    with pytest.raises(StoreError) as e:
        await cs.set("priorty", "error")
    assert e.value.code == "unknown_key" and "did you mean 'priority'" in str(e.value)
    with pytest.raises(Conflict):
        await cs.set("priority", "warning", expected_revision=v.revision + 100)
    with pytest.raises(Conflict):
        await cs.set("priority", "warning", expected_revision=0)  # 0: only if not set
    v2 = await cs.set("priority", "warning", expected_revision=v.revision)
    assert (await cs.set("outputs.rate", "2.5")).value == 2.5
    assert (await cs.set("syscall_event_drops.actions", "log,alert")).value == ["log", "alert"]
    assert set(await cs.all()) == {"priority", "outputs.rate", "syscall_event_drops.actions"}
    with pytest.raises(Conflict):
        await cs.unset("priority", expected_revision=v.revision)
    rev = await cs.unset("priority", expected_revision=v2.revision)
    assert rev > v2.revision and await cs.get("priority") is None
    assert await cs.unset("priority") == 0
    await nc.close()
