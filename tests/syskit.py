"""Tiercel's services as real processes for the security and fault suites: `tiercel rules serve`,
`tiercel api`, `tiercel ingest` started like a user starts them (`python -m tiercel ...` with
`-o key=value`), each with its own log file, stopped, SIGKILLed and restarted by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tiercel.common.broker import free_port


class Service:
    """One service process. `args` follow `tiercel`; options go on the command line as -o."""

    def __init__(self, name: str, args: list[str], workdir: Path, options: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None):
        self.name, self.args, self.workdir = name, list(args), Path(workdir)
        self.options = dict(options or {})
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{name}.log"
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tiercel", *self.args]
        for k, v in self.options.items():
            cmd += ["-o", f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"]
        return cmd

    def start(self) -> Service:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.update(self.env)
        log = open(self.log_path, "ab")
        log.write(f"--- start {self.starts}: {' '.join(self.args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def rules_worker(workdir: Path, url: str, index: int, options: dict[str, Any]) -> Service:
    return Service(f"rules-{index}", ["rules", "serve", "--index", str(index)], workdir,
                   {"metrics.rules_port": 0, **options}, env={"TIERCEL_NATS_URL": url})


def api(workdir: Path, url: str, sock: Path, options: dict[str, Any] | None = None, name: str = "api") -> Service:
    return Service(name, ["api"], workdir, {"grpc.bind_address": f"unix://{sock}", "metrics.enabled": "false",
                                            "state_dir": str(workdir / f"{name}-state"), **(options or {})},
                   env={"TIERCEL_NATS_URL": url})


def ingest(workdir: Path, url: str, options: dict[str, Any] | None = None, name: str = "ingest") -> Service:
    """Ingest without a kernel driver: the k8s audit webhook on a free port is its input."""
    return Service(name, ["ingest", "--driver", "none"], workdir,
                   {"metrics.enabled": "false", "k8s_audit.listen": f"127.0.0.1:{free_port()}",
                    "state_dir": str(workdir / f"{name}-state"), **(options or {})},
                   env={"TIERCEL_NATS_URL": url})


def stop_all(services: list[Service]) -> None:
    for s in services:
        if s.alive():
            s.proc.terminate()
    deadline = time.monotonic() + 15
    for s in services:
        if s.proc is not None:
            try:
                s.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.kill()
