"""Shared by the kernel tests: skip when audit netlink is not usable, and an `auditctl -l`-like
snapshot of the kernel audit configuration read over netlink."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time

import pytest

from tiercel.ingest.audit.client import AuditControl, AuditError


def audit_snapshot() -> tuple[dict, list[str]]:
    with AuditControl() as c:
        st = c.get_status()
        rules = [f"{r.describe()} #{hashlib.sha1(r.signature()).hexdigest()[:12]}" for r in c.list_rules()]
    status = {k: getattr(st, k) for k in ("enabled", "pid", "backlog_limit", "backlog_wait_time",
                                          "rate_limit", "failure")}
    return status, rules


LOCK_PATH = "/tmp/tiercel-audit-tests.lock"


@pytest.fixture
def audit_lock():
    """Kernel audit is one per machine: test runs of several checkouts take turns."""
    with open(LOCK_PATH, "w") as f:
        deadline = time.monotonic() + 300
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip("another test run holds kernel audit for too long")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def require_audit() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for audit netlink")
    try:
        with AuditControl() as c:
            st = c.get_status()
    except (AuditError, OSError) as e:
        pytest.skip(f"kernel audit not usable here: {e}")
    if st.pid and os.path.exists(f"/proc/{st.pid}"):
        pytest.skip(f"kernel audit is held by pid {st.pid}")
