"""`tiercel up`: the whole pipeline as supervised children reaches ready, restarts a killed child,
and Ctrl-C leaves no process and no socket behind."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest


def _procs_mentioning(marker: str) -> list[int]:
    pids = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            pids.append(int(d.name))
    return pids


class Lines:
    """Collects a child's stderr lines in a thread so the test can wait for one."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for raw in stream:
            with self._cv:
                self.lines.append(raw.rstrip("\n"))
                self._cv.notify_all()

    def wait_for(self, needle: str, timeout: float, start: int = 0) -> int:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i in range(start, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line with {needle!r} in {timeout}s; got:\n" + "\n".join(self.lines[-30:]))
                self._cv.wait(left)


@pytest.mark.skipif(os.geteuid() != 0, reason="the proc connector needs root")
def test_up_ready_restart_and_clean_stop(tmp_path):
    state = tmp_path / "state"
    sock = tmp_path / "api.sock"
    args = [sys.executable, "-m", "tiercel", "up", "--workers", "2", "--quiet",
            "-o", "ingest.driver=proc_connector", "-o", f"state_dir={state}",
            "-o", f"grpc.bind_address=unix://{sock}", "-o", "metrics.enabled=false",
            "-o", "k8s_audit.listen=127.0.0.1:0"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = Lines(p.stderr)
    try:
        out.wait_for("tiercel up: ready", 90)
        assert sock.exists()
        children = [pid for pid in _procs_mentioning(str(state)) if pid != p.pid]
        assert len(children) >= 5, children  # nats-server, ingest, 2 rules workers, api
        # A crashed child is restarted.
        worker = next(pid for pid in children
                      if b"rules\0serve" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(worker, signal.SIGKILL)
        i = out.wait_for("exited with status -9; restarting", 60)
        out.wait_for("ready: ", 60, start=i)  # the new worker reports ready
        # So is the embedded broker; the services reconnect to it.
        broker = next(pid for pid in children
                      if b"nats-server" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(broker, signal.SIGKILL)
        out.wait_for("nats-server exited", 30, start=i)
        out.wait_for("nats-server restarted", 30, start=i)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    assert "tiercel up: stopping" in "\n".join(out.lines)
    deadline = time.monotonic() + 10
    while _procs_mentioning(str(state)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _procs_mentioning(str(state)) == [], "tiercel up left processes behind"
    assert not sock.exists(), "tiercel up left its socket behind"
