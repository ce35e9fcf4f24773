"""Secure by default, the parts test_api_security.py does not cover (`make test-security` runs
both): every service needs NATS credentials when the server asks for them (user/password, token,
NKey seed, .creds file), fails with one clear line without them, and never writes a secret to its
log, on success or on error; every changing gRPC call is refused to a read-only identity, over
mutual TLS and over the unix socket, while reads stay open.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys

import nats
import pytest

from tests import natsauth, syskit
from tests.test_api_security import pki, sock_dir, tls_cfg, tls_channel  # noqa: F401  (fixtures)
from tiercel.common.broker import EmbeddedBroker

pytestmark = [pytest.mark.security, pytest.mark.timeout(240)]

RULES = """
- rule: Shadow read by cat
  desc: test rule
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/shadow
  output: "cat opened %fd.name"
  priority: WARNING
"""

NO_CREDS = re.compile(r"^tiercel (rules serve|api|ingest): error: cannot connect to NATS at nats://[^ ]+: "
                      r"nats: 'Authorization Violation'; check the credentials \(nats.user", re.M)


def assert_fails_clearly(services: list[syskit.Service], secrets_: list[str], timeout: float = 30) -> None:
    for s in services:
        rc = s.wait_exit(timeout)
        log = s.log()
        assert rc == 1, f"{s.name} exited {rc}: {log[-1500:]}"
        assert NO_CREDS.search(log), f"{s.name}: {log[-1500:]}"
        assert "Traceback" not in log, log[-3000:]
        for secret in secrets_:
            assert secret not in log, f"{s.name} wrote a secret to its log"


wait_ready = syskit.wait_ready


def assert_no_secret_in_logs(services: list[syskit.Service], secrets_: list[str]) -> None:
    for s in services:
        log = s.log()
        assert "Traceback" not in log, f"{s.name}: {log[-3000:]}"
        for secret in secrets_:
            assert secret not in log, f"{s.name} wrote a secret to its log"


def three(tmp_path, url: str, options: dict, names: tuple[str, ...] = ("rules", "api", "ingest"),
          per_service: dict[str, dict] | None = None) -> list[syskit.Service]:
    tmp_path.mkdir(exist_ok=True)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    per = per_service or {}
    out = []
    common = {"log_level": "debug", **options}
    if "rules" in names:
        out.append(syskit.rules_worker(tmp_path, url, 0, {"rules_files": str(rules), **common, **per.get("rules", {})}))
    if "api" in names:
        out.append(syskit.api(tmp_path, url, tmp_path / f"api-{secrets.token_hex(3)}.sock",
                              {**common, **per.get("api", {})}))
    if "ingest" in names:
        out.append(syskit.ingest(tmp_path, url, {**common, **per.get("ingest", {})}))
    return out


@pytest.fixture
def user_broker(tmp_path):
    """A nats-server that requires a login: user/password, or an NKey."""
    password = "pw-" + secrets.token_hex(12)
    nk = natsauth.new_nkey("user")
    conf = natsauth.users_config([{"user": "tiercel", "password": password}, {"nkey": nk.public}])
    with EmbeddedBroker(store_dir=tmp_path / "js", extra_config=conf) as b:
        yield b, password, nk


async def test_nats_login_with_user_password_or_nkey_and_clear_failures_without(user_broker, tmp_path):
    broker, password, nk = user_broker
    wrong = "wrong-" + secrets.token_hex(8)
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(nk.seed + "\n")
    seed_file.chmod(0o600)
    port = broker.url.rsplit(":", 1)[1]
    # No credentials, a wrong password (as options, and inside the URL): one line each, no secret.
    failing = three(tmp_path / "none", broker.url, {})
    failing += three(tmp_path / "wrong", broker.url, {"nats.user": "tiercel", "nats.password": wrong},
                     names=("rules", "ingest"))
    failing += three(tmp_path / "wrongurl", f"nats://tiercel:{wrong}@127.0.0.1:{port}", {}, names=("api",))
    syskit.start_all(failing)
    assert_fails_clearly(failing, [wrong, password])

    # The right credentials, one way per service: all three run.
    good = three(tmp_path, broker.url, {}, per_service={
        "rules": {"nats.user": "tiercel", "nats.password": password},
        "api": {"nats.url": f"nats://tiercel:{password}@127.0.0.1:{port}"},
        "ingest": {"nats.nkey_seed": str(seed_file)}})
    syskit.start_all(good)
    try:
        seen = await wait_ready(broker.url, {"rules", "api", "ingest"}, user="tiercel", password=password)
        assert seen >= {"rules", "api", "ingest"}, f"ready: {seen}; logs: {[s.log()[-800:] for s in good]}"
    finally:
        syskit.stop_all(good)
    assert_no_secret_in_logs(good, [password, nk.seed, wrong])


async def test_nats_token_and_creds_file(tmp_path):
    token = "tok-" + secrets.token_hex(12)
    with EmbeddedBroker(store_dir=tmp_path / "js1", extra_config=natsauth.token_config(token)) as b:
        port = b.url.rsplit(":", 1)[1]
        bad = three(tmp_path / "tok", b.url, {"nats.token": "not-" + token[4:]}, names=("rules",))
        good = three(tmp_path, b.url, {"nats.token": token}, names=("rules",))
        good += three(tmp_path, f"nats://{token}@127.0.0.1:{port}", {}, names=("api",))
        syskit.start_all(bad + good)
        try:
            assert_fails_clearly(bad, [token, token[4:]])
            seen = await wait_ready(b.url, {"rules", "api"}, token=token)
            assert seen >= {"rules", "api"}, f"ready: {seen}; logs: {[s.log()[-800:] for s in good]}"
        finally:
            syskit.stop_all(good)
        assert_no_secret_in_logs(good, [token])

    op = natsauth.new_operator()
    creds = tmp_path / "tiercel.creds"
    creds.write_text(op.creds())
    creds.chmod(0o600)
    with EmbeddedBroker(store_dir=tmp_path / "js2", extra_config=op.server_config()) as b:
        bad = three(tmp_path / "op", b.url, {}, names=("rules",))
        good = three(tmp_path / "op", b.url, {"nats.creds": str(creds)}, names=("api", "ingest"))
        syskit.start_all(bad + good)
        try:
            assert_fails_clearly(bad, [])
            seen = await wait_ready(b.url, {"api", "ingest"}, user_credentials=str(creds))
            assert seen >= {"api", "ingest"}, f"ready: {seen}; logs: {[s.log()[-800:] for s in good]}"
        finally:
            syskit.stop_all(good)
        assert_no_secret_in_logs(good, [op.user.seed, op.user_jwt.split(".")[2], op.account.seed])


# --- read-only identities on every changing call ----------------------------------------------

# Run by a client process, possibly as another user: every changing call of the API, then a few
# reads; prints one `name=CODE` per call.
CALLS = r'''
import os, sys
import grpc
from tiercel.pb.falco import (configs_pb2, configs_pb2_grpc, inputs_pb2, inputs_pb2_grpc, rules_pb2,
                              rules_pb2_grpc, version_pb2, version_pb2_grpc, outputs_pb2, outputs_pb2_grpc)
target, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tls = sys.argv[4:7]
if uid >= 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
if tls:
    cert, key, ca = (open(p, "rb").read() for p in tls)
    ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca, key, cert),
                             options=[("grpc.ssl_target_name_override", "localhost")])
else:
    ch = grpc.insecure_channel(target)
rules, configs = rules_pb2_grpc.serviceStub(ch), configs_pb2_grpc.serviceStub(ch)

def send():
    call = inputs_pb2_grpc.serviceStub(ch).send(iter([inputs_pb2.event(source="k8s_audit",
                                                                      json='{"kind":"Event","verb":"get"}')]),
                                                timeout=10)
    return list(call)

calls = [
    ("inputs.send", send),
    ("rules.put", lambda: rules.put(rules_pb2.put_request(name="evil.yaml", content="- list: l\n  items: []\n"), timeout=10)),
    ("rules.delete", lambda: rules.delete(rules_pb2.delete_request(name="rules.yaml"), timeout=10)),
    ("rules.enable", lambda: rules.enable(rules_pb2.select_request(name="*"), timeout=10)),
    ("rules.disable", lambda: rules.disable(rules_pb2.select_request(name="*"), timeout=10)),
    ("configs.set", lambda: configs.set(configs_pb2.set_request(key="priority", value="emergency"), timeout=10)),
    ("configs.unset", lambda: configs.unset(configs_pb2.unset_request(key="priority"), timeout=10)),
    ("version", lambda: version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=10)),
    ("rules.list", lambda: rules.list(rules_pb2.list_request(), timeout=10)),
    ("rules.validate", lambda: rules.validate(rules_pb2.put_request(name="x.yaml", content="- list: l\n  items: []\n"), timeout=10)),
    ("configs.list", lambda: configs.list(configs_pb2.list_request(), timeout=10)),
    ("outputs.get", lambda: list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=10))),
]
out = []
for name, fn in calls:
    try:
        fn()
        out.append(f"{name}=OK")
    except grpc.RpcError as e:
        out.append(f"{name}={e.code().name}")
print(" ".join(out))
'''

CHANGES = ("inputs.send", "rules.put", "rules.delete", "rules.enable", "rules.disable", "configs.set",
           "configs.unset")
READS = ("version", "rules.list", "rules.validate", "configs.list", "outputs.get")


def run_calls(target: str, uid: int = -1, gid: int = -1, tls: tuple = ()) -> dict[str, str]:
    p = subprocess.run([sys.executable, "-c", CALLS, target, str(uid), str(gid), *map(str, tls)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return dict(x.split("=", 1) for x in p.stdout.split())


async def test_read_only_identities_cannot_change_anything(nats_broker, sock_dir, pki, tmp_path):  # noqa: F811
    """Against a real rules worker: the reader certificate and a unix user outside the admin group
    get PERMISSION_DENIED on every changing call and nothing changes; reads work for them; the
    admin certificate and root get through."""
    from tests import apikit

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    worker = syskit.rules_worker(tmp_path, nats_broker.url, 0, {"rules_files": str(rules)}).start()
    sock = sock_dir / "t.sock"
    cfg = tls_cfg(nats_broker.url, sock, pki, **{"grpc.socket_group": "65534"})
    try:
        await wait_ready(nats_broker.url, {"rules"})
        async with apikit.running_api(cfg) as api:
            tls_target = api.target("tls").replace("127.0.0.1", "localhost")
            unix_target = api.target("unix")
            reader = (pki["reader.crt"], pki["reader.key"], pki["ca.crt"])
            runs = {"reader cert": asyncio.to_thread(run_calls, tls_target, tls=reader)}
            if os.geteuid() == 0:
                runs["unix nobody"] = asyncio.to_thread(run_calls, unix_target, 65534, 65534)
            results = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
            for who, codes in results.items():
                for name in CHANGES:
                    assert codes[name] == "PERMISSION_DENIED", (who, name, codes)
                for name in READS:
                    assert codes[name] == "OK", (who, name, codes)
            # nothing changed: the store holds the seeded file only, priority is not stored
            nc = await nats.connect(nats_broker.url)
            from tiercel.common import bus

            msg = await nc.request(bus.control_subject("rules", "list"), bus.encode_request("list"), timeout=10)
            listed = bus.decode_reply(msg.data)
            assert [f["name"] for f in listed["files"]] == ["rules.yaml"] and not listed["selection"]
            msg = await nc.request(bus.control_subject("config", "get"), bus.encode_request("get", key="priority"),
                                   timeout=10)
            assert bus.decode_reply(msg.data)["is_default"] is True
            info = await nc.jetstream().stream_info(bus.EVENTS_STREAM.name)
            assert info.state.messages == 0 and info.state.last_seq == 0  # no input was published
            await nc.close()
            # The admin certificate gets through every check (the changes are then applied).
            admin = (pki["admin.crt"], pki["admin.key"], pki["ca.crt"])
            codes = await asyncio.to_thread(run_calls, tls_target, tls=admin)
            assert all(codes[n] != "PERMISSION_DENIED" for n in CHANGES), codes
            assert codes["rules.put"] == "OK" and codes["configs.set"] == "OK" and codes["inputs.send"] == "OK"
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()



def test_secrets_are_redacted_from_log_and_error_lines():
    from tiercel.common.log import redact

    for text, secret in (("nats://tiercel:s3cr3t@h:4222", "s3cr3t"), ("nats://t0ken@h:4222", "t0ken"),
                         ("tls://a:p1@h1:1,nats://b:p2@h2:2", "p1"), ("tls://a:p1@h1:1,nats://b:p2@h2:2", "p2"),
                         ('{"password": "pw"}', "pw"), ("token=abc", "abc"), ("nats.nkey_seed=SUABC", "SUABC")):
        assert secret not in redact(text), text
    assert redact("nats://h:4222 and tls://h2:1") == "nats://h:4222 and tls://h2:1"
