"""The API from the terminal: `tiercel api` as a service process (clean shutdown removes the
socket), `tiercel version --grpc`, `tiercel alerts --grpc`, `tiercel certs init`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import nats

from tests import apikit
from tests.conftest import tiercel


def start_api(url: str, sock, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tiercel", "api", "--nats-url", url, "--bind", f"unix://{sock}",
                             "-o", "metrics.enabled=false", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_socket(p: subprocess.Popen, sock, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            raise AssertionError(f"tiercel api did not start: {p.communicate()[1][-2000:]}")
        time.sleep(0.05)


async def test_api_service_and_its_clients(nats_broker, tmp_path):
    sock = tmp_path / "api.sock"
    p = start_api(nats_broker.url, sock)
    try:
        wait_socket(p, sock)
        v = tiercel("version", "--grpc", f"unix://{sock}", "--json", check=True)
        from tiercel import __version__
        assert json.loads(v.stdout)["version"] == __version__
        tail = subprocess.Popen([sys.executable, "-m", "tiercel", "alerts", "--grpc", str(sock), "--json",
                                 "-n", "2", "--priority", "error"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        nc = await nats.connect(nats_broker.url)
        # Publish until the tail (which subscribes asynchronously) has printed two Error alerts.
        i = 0
        while tail.poll() is None and i < 200:
            i += 1
            await apikit.publish(nc, [apikit.make_alert(i, priority="Notice"),
                                      apikit.make_alert(1000 + i, priority="Error")])
            await asyncio.sleep(0.1)
        out, err = tail.communicate(timeout=20)
        await nc.close()
        assert tail.returncode == 0, err
        lines = [json.loads(x) for x in out.splitlines()]
        assert len(lines) == 2 and all(a["priority"] == "Error" for a in lines)
        assert lines[0]["output_fields"]["proc.name"] == "cat" and lines[0]["time"].endswith("Z")
        assert lines[1]["seq"] == lines[0]["seq"] + 1
        st = tiercel("status", "--nats-url", nats_broker.url, "--json", check=True)
        (api,) = [s for s in json.loads(st.stdout)["services"] if s.get("service") == "api"]
        assert api["listeners"] == [f"unix://{sock}"] and api["counters"]["alerts_received"] >= 4
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err[-2000:]
    assert not sock.exists(), "the socket is removed on a clean shutdown"


def test_api_fails_with_one_line(tmp_path, nats_broker):
    r = tiercel("api", "--nats-url", nats_broker.url, "--bind", "127.0.0.1:0", "-o", "metrics.enabled=false")
    assert r.returncode == 1
    assert "needs a server certificate chain" in r.stderr and "Traceback" not in r.stderr
    r = tiercel("api", "--bind", f"unix://{tmp_path}/s.sock")
    assert r.returncode == 1 and "needs a NATS server" in r.stderr


def test_certs_init_cli(tmp_path):
    r = tiercel("certs", "init", str(tmp_path / "pki"), check=True)
    assert "server.crt" in r.stdout and "tiercel alerts --grpc" in r.stdout
    assert (tmp_path / "pki" / "admin.key").exists()
    assert oct(os.stat(tmp_path / "pki" / "ca.key").st_mode & 0o777) == "0o600"
    r = tiercel("certs", "init", str(tmp_path / "pki"))
    assert r.returncode == 1 and "--force" in r.stderr
