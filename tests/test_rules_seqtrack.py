"""Sequence-gap accounting (sans-IO): ranges from several workers, holes declared after the horizon,
declared holes shared so no one counts them twice, ingest restarts."""

from __future__ import annotations

from tiercel.rules.ratelimit import TokenBucket
from tiercel.rules.seqtrack import HostSeq, SeqTracker


def test_token_bucket_rate_burst_and_unlimited():
    b = TokenBucket(rate=2, max_burst=3, now=0.0)
    assert [b.claim(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.claim(0.5) and not b.claim(0.5)  # 0.5 s at 2/s = one token
    assert [b.claim(10.0) for _ in range(4)] == [True, True, True, False]  # refill capped at burst
    b.reconfigure(0, 1)
    assert all(b.claim(10.0) for _ in range(1000))  # rate 0: unlimited
    b = TokenBucket(rate=1, max_burst=10, now=0.0)
    b.reconfigure(1, 2)  # shrinking the burst caps the fill
    assert [b.claim(0.0) for _ in range(3)] == [True, True, False]


def test_contiguous_ranges_in_any_order_leave_no_hole():
    h = HostSeq()
    for a in (1, 513, 257, 769):
        h.add(a, a + 256, now=0.0)
    assert h.base == 1025 and h.holes() == []
    assert h.expire(100.0, horizon=5) == []


def test_hole_is_declared_only_after_the_horizon():
    h = HostSeq()
    h.add(1, 101, 0.0)
    h.add(201, 301, 1.0)  # 101..200 missing
    assert h.holes() == [(101, 201)]
    assert h.expire(5.0, horizon=5) == []
    h2 = HostSeq(base=h.base, starts=list(h.starts), ends=list(h.ends), times=list(h.times))
    h2.add(101, 201, 5.5)  # redelivered in time: no loss
    assert h2.expire(100.0, 5) == [] and h2.base == 301
    assert h.expire(6.5, horizon=5) == [(101, 201)]
    assert h.base == 301 and h.holes() == []


def test_two_workers_share_ranges_and_only_the_leader_counts():
    a, b = SeqTracker(), SeqTracker()
    a.processed("h1", 1, 257, 0.0)
    b.processed("h1", 257, 513, 0.0)
    a.processed("h1", 769, 1025, 0.0)  # 513..768 lost
    for src, dst in ((a, b), (b, a)):
        seen, lost, resets = src.take_outgoing()
        dst.merge(seen, lost, resets, 0.1)
    assert a.hosts["h1"].holes() == [(513, 769)] == b.hosts["h1"].holes()
    assert a.expire(30.0, horizon=10) == {"h1": 256}  # a leads
    seen, lost, resets = a.take_outgoing()
    b.merge(seen, lost, resets, 30.1)
    assert b.hosts["h1"].holes() == [] and b.expire(60.0, 10) == {}  # a new leader does not recount


def test_ingest_restart_starts_numbering_again():
    t = SeqTracker()
    t.processed("h", 1, 1001, 0.0)
    t.processed("h", 1, 101, 1.0)  # ingest restarted: seq 1 again, first delivery
    assert t.hosts["h"].base == 101 and t.expire(100.0, 5) == {}
    other = SeqTracker()
    other.processed("h", 1, 1001, 0.0)
    other.processed("h", 101, 201, 1.5)  # below base: kept aside, replayed by the reset
    seen, lost, resets = t.take_outgoing()
    other.merge(seen, lost, resets, 2.0)
    assert other.hosts["h"].base == 201 and other.expire(100.0, 5) == {}


def test_redelivered_first_batch_does_not_reset():
    t = SeqTracker()
    t.processed("h", 1, 101, 0.0)
    t.processed("h", 101, 201, 0.0)
    t.processed("h", 1, 101, 1.0, first_delivery=False)
    assert t.hosts["h"].base == 201
