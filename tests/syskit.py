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
                 env: dict[str, str] | None = None, stdout: Path | None = None):
        self.name, self.args, self.workdir = name, list(args), Path(workdir)
        self.options = dict(options or {})
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{name}.log"
        self.stdout_path = stdout  # stdout apart from the log (a client's output)
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
        out = open(self.stdout_path, "ab") if self.stdout_path else log
        self.proc = subprocess.Popen(self.command(), env=env, stdout=out, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if out is not log:
            out.close()
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


def alerts_tail(workdir: Path, sock: Path, name: str) -> Service:
    """`tiercel alerts --grpc unix://SOCK --json`: a subscriber that reconnects and resumes by itself."""
    return Service(name, ["alerts", "--grpc", f"unix://{sock}", "--json"], workdir, stdout=workdir / f"{name}.out")


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    import json

    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{") and line.endswith("}"):
            out.append(json.loads(line))
    return out


async def wait_ready(url: str, services: set[str], timeout: float = 60, count: int = 1, **auth: Any) -> set[str]:
    """Until `count` instances of each of `services` (rules, api, ingest) beat in state ready, as
    seen with `auth`; returns the services seen ready."""
    import asyncio
    import json

    import nats

    nc = await nats.connect(url, **auth)
    seen: dict[str, set[str]] = {}

    async def on_hb(msg: Any) -> None:
        hb = json.loads(msg.data)
        if hb.get("state") == "ready":
            seen.setdefault(hb["service"], set()).add(hb["instance"])

    await nc.subscribe("tiercel.hb.>", cb=on_hb)
    deadline = time.monotonic() + timeout

    def done() -> bool:
        return all(len(seen.get(s, ())) >= count for s in services)

    try:
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    return {s for s, i in seen.items() if len(i) >= count}


def start_all(services: list[Service]) -> None:
    for s in services:
        s.start()


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
