"""The audit session on the real kernel: rules installed while running, and the kernel's audit
configuration exactly as before after a clean stop, a SIGTERM, and a SIGKILL plus the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.audit_helpers import audit_snapshot, require_audit
from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.client import AuditControl
from tiercel.ingest.audit.session import AuditSession, AuditUnavailable
from tiercel.ingest.audit.syscall_set import RULE_KEY

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("audit_lock")]

HOLDER = """
import pathlib, signal, sys, time
from tiercel.ingest.audit.session import AuditSession
s = AuditSession(pathlib.Path(sys.argv[1]))
s.start(["openat", "execve"])
signal.signal(signal.SIGTERM, lambda *a: (s.stop(), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def _our_rules() -> list[nl.AuditRule]:
    with AuditControl() as c:
        return [r for r in c.list_rules() if RULE_KEY in r.keys()]


def _holder(state_dir) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


@pytest.fixture
def foreign_rule(audit_lock):
    """A rule somebody else owns, present before and after: it must be left alone."""
    require_audit()
    r = nl.AuditRule()
    r.add_syscall(161)  # chroot, b64
    r.fields = [nl.RuleField(nl.AUDIT_ARCH, nl.AUDIT_EQUAL, nl.ARCH_X86_64),
                nl.RuleField(nl.AUDIT_FILTERKEY, nl.AUDIT_EQUAL, text="someone-else")]
    with AuditControl() as c:
        c.add_rule(r)
    yield r
    with AuditControl() as c:
        c.delete_rule(r)


def test_clean_stop_restores(tmp_path, foreign_rule):
    before = audit_snapshot()
    s = AuditSession(tmp_path)
    s.start(["openat"])
    try:
        status, rules = audit_snapshot()
        assert status["enabled"] == 1 and status["pid"] == os.getpid() and status["backlog_wait_time"] == 0
        assert len(_our_rules()) == 2 and (tmp_path / "audit-session.json").exists()
        s.set_event_types(["openat", "ptrace"])  # rules follow the ruleset
        assert any(101 in r.syscalls() for r in _our_rules())  # ptrace b64
        assert len(_our_rules()) == 2
    finally:
        s.stop()
    assert audit_snapshot() == before
    assert not (tmp_path / "audit-session.json").exists()


def test_sigterm_restores(tmp_path, foreign_rule):
    before = audit_snapshot()
    p = _holder(tmp_path)
    assert _our_rules() and audit_snapshot() != before
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    assert audit_snapshot() == before


def test_sigkill_then_next_start_recovers(tmp_path, foreign_rule):
    before = audit_snapshot()
    p = _holder(tmp_path)
    p.kill()
    p.wait(10)
    assert _our_rules(), "a killed holder leaves its rules behind"
    s = AuditSession(tmp_path)
    s.start(["execve"])
    assert s.recovered
    s.stop()
    deadline = time.monotonic() + 2
    while audit_snapshot() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert audit_snapshot() == before


def test_second_instance_refused(tmp_path):
    require_audit()
    before = audit_snapshot()
    p = _holder(tmp_path)
    try:
        with pytest.raises(AuditUnavailable, match="another tiercel ingest|taken"):
            AuditSession(tmp_path).start(["openat"])
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    assert audit_snapshot() == before
