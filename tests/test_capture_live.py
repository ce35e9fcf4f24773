"""`tiercel capture` on the real kernel: live events written as .tcap and as .scap, read back by
`tiercel inspect` (the capture reader) with the fields ingest resolved live."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.audit_helpers import require_audit
from tiercel.ingest.capfile import read_capture
from tiercel.rules.fields import catalog

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120), pytest.mark.usefixtures("audit_lock")]


def field(ev, name: str):
    return catalog.lookup(name, "syscall").extract(ev, None)


@pytest.mark.parametrize("fmt", ["tcap", "scap"])
def test_capture_reads_back(tmp_path, fmt):
    require_audit()
    out = tmp_path / f"live.{fmt}"
    p = subprocess.Popen([sys.executable, "-m", "tiercel", "capture", "-w", str(out), "--format", fmt,
                          "--event-types", "execve,openat,read,close", "-o", f"state_dir={tmp_path}"],
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            assert line, f"capture exited {p.wait()} before it was ready"
            if "writing" in line:
                break
        child = subprocess.run(["sh", "-c", "cat /etc/hostname > /dev/null; echo $$"], capture_output=True,
                               text=True, check=True)
        sh_pid = int(child.stdout)
        time.sleep(0.5)
    finally:
        p.send_signal(signal.SIGTERM)
        rest = p.stderr.read()
        assert p.wait(30) == 0, rest
    assert "events written" in rest
    cat = {}
    for ev in read_capture(out):
        t = ev.thread
        if t is not None and t.comm == "cat" and t.ptid == sh_pid and field(ev, "fd.name") == "/etc/hostname":
            cat.setdefault(field(ev, "evt.type"), ev)
    assert {"openat", "read", "close"} <= set(cat), sorted(cat)
    for ev in cat.values():
        assert (field(ev, "proc.pname"), field(ev, "user.name"), field(ev, "proc.cmdline")) == (
            "sh", "root", "cat /etc/hostname")
    shown = subprocess.run([sys.executable, "-m", "tiercel", "inspect", str(out),
                            f"proc.name=cat and proc.ppid={sh_pid} and evt.type=openat",
                            "-p", "%proc.pname %fd.name"], capture_output=True, text=True, check=True)
    assert "sh /etc/hostname" in shown.stdout.splitlines(), shown.stdout + shown.stderr
