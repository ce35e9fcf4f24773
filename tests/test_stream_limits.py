"""Tiercel's streams keep the limits their operator gives them: every service declares the streams
at start (`ensure_streams`), which creates what is missing and puts back what the contract needs,
but must not undo a disk budget or an age set with `nats stream edit` (found by the fault suite:
a restarted worker reset TIERCEL_ALERTS to 1 GiB)."""

from __future__ import annotations

import nats

from tiercel.common import bus
from tiercel.common.natsconn import ensure_streams


async def test_operator_limits_survive_a_service_start_and_the_contract_is_restored(nats_broker):
    nc = await nats.connect(nats_broker.url)
    js = nc.jetstream()
    try:
        await ensure_streams(js)
        info = await js.stream_info(bus.ALERTS_STREAM.name)
        assert info.config.max_bytes == bus.ALERTS_STREAM.max_bytes
        # the operator: a 64 MiB budget, one day; and a subject list that breaks the contract
        await js.update_stream(info.config.evolve(max_bytes=64 << 20, max_age=86400.0,
                                                  subjects=[f"{bus.ALERTS_SUBJECT}.critical.>"]))
        await ensure_streams(js)  # what every service does at start
        cfg = (await js.stream_info(bus.ALERTS_STREAM.name)).config
        assert cfg.max_bytes == 64 << 20 and cfg.max_age == 86400.0
        assert cfg.subjects == list(bus.ALERTS_STREAM.subjects) and cfg.duplicate_window == 600.0
        # a stream that was deleted is created again with the contract's limits
        await js.delete_stream(bus.DROPS_STREAM.name)
        await ensure_streams(js)
        assert (await js.stream_info(bus.DROPS_STREAM.name)).config.max_bytes == bus.DROPS_STREAM.max_bytes
    finally:
        await nc.close()
