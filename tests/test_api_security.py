"""Secure by default, for real: mutual TLS (refused without a client certificate, with a wrong CA,
with an expired certificate), admin vs read-only identities over TLS and over the unix socket
(peer credentials of real processes running as other users), socket mode and group."""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import grpc
import nats
import pytest

from tests import apikit
from tests.test_api_outputs import subscribed, wait_for
from tiercel.api import certs
from tiercel.pb.falco import rules_pb2, rules_pb2_grpc, version_pb2, version_pb2_grpc


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    paths = certs.init(d)
    other = certs.make_ca("Some other CA")
    paths["stranger.crt"], paths["stranger.key"] = certs.issue(other, certs.ADMIN_CN).write(d, "stranger")
    ca = certs.Issued(
        __import__("cryptography").x509.load_pem_x509_certificate(paths["ca.crt"].read_bytes()),
        __import__("cryptography").hazmat.primitives.serialization.load_pem_private_key(
            paths["ca.key"].read_bytes(), None))
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    paths["expired.crt"], paths["expired.key"] = certs.issue(
        ca, certs.ADMIN_CN, not_before=past - datetime.timedelta(days=30), not_after=past).write(d, "expired")
    return paths


@pytest.fixture
def sock_dir():
    """A socket directory other users can traverse (pytest's tmp dirs are private to root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="tiercel-sock-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tls_cfg(broker_url, sock, pki, **extra):
    return apikit.api_config(broker_url, sock, **{
        "grpc.bind_address": f"unix://{sock},127.0.0.1:0", "grpc.cert_chain": str(pki["server.crt"]),
        "grpc.private_key": str(pki["server.key"]), "grpc.root_certs": str(pki["ca.crt"]),
        "grpc.admin_subjects": [certs.ADMIN_CN], **extra})


def tls_channel(target: str, pki, who: str | None) -> grpc.aio.Channel:
    ca = pki["ca.crt"].read_bytes()
    if who is None:
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        creds = grpc.ssl_channel_credentials(ca, pki[f"{who}.key"].read_bytes(), pki[f"{who}.crt"].read_bytes())
    return grpc.aio.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])


async def call_version(ch: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=5)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as e:
        return e.code()


async def call_put(ch: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await rules_pb2_grpc.serviceStub(ch).put(rules_pb2.put_request(name="x.yaml", content="- list: l\n"),
                                                 timeout=5)
    return e.value


async def test_falco_client_over_mutual_tls_and_refused_handshakes(nats_broker, sock_dir, pki, tmp_path):
    client = apikit.build_falco_client(tmp_path / "falco-client")
    async with apikit.running_api(tls_cfg(nats_broker.url, sock_dir / "t.sock", pki)) as api:
        target = api.target("tls")
        assert target.startswith("127.0.0.1:") and not target.endswith(":0")
        # Falco's own client, mutual TLS, sub and get.
        p = apikit.falco_client(client, "sub", target.replace("127.0.0.1", "localhost"), 2,
                                tls=(pki["reader.crt"], pki["reader.key"], pki["ca.crt"]))
        await asyncio.to_thread(apikit.wait_subscribed, p)
        await wait_for(subscribed(api, 1), what="the mTLS subscriber")
        nc = await nats.connect(nats_broker.url)
        await apikit.publish(nc, [apikit.make_alert(1), apikit.make_alert(2)])
        await nc.close()
        got = await asyncio.to_thread(apikit.read_results, p)
        assert [g["output_fields"]["evt.num"] for g in got] == ["1", "2"]
        g = apikit.falco_client(client, "get", target.replace("127.0.0.1", "localhost"),
                                tls=(pki["admin.crt"], pki["admin.key"], pki["ca.crt"]))
        assert len(await asyncio.to_thread(apikit.read_results, g)) == 2

        # No client certificate, a certificate from another CA, an expired one: no handshake.
        for who in (None, "stranger", "expired"):
            ch = tls_channel(target, pki, who)
            assert await call_version(ch) == grpc.StatusCode.UNAVAILABLE, who
            await ch.close()
        # Plaintext to the TLS port: refused too.
        ch = grpc.aio.insecure_channel(target)
        assert await call_version(ch) == grpc.StatusCode.UNAVAILABLE
        await ch.close()

        # Read-only certificate: reads work, changes are PERMISSION_DENIED.
        ch = tls_channel(target, pki, "reader")
        assert await call_version(ch) == grpc.StatusCode.OK
        e = await call_put(ch)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "CN=tiercel-reader" in e.details()
        from tiercel.pb.falco import inputs_pb2, inputs_pb2_grpc
        call = inputs_pb2_grpc.serviceStub(ch).send(iter([inputs_pb2.event(source="x", json="{}")]))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call.read()
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await ch.close()
        # Admin certificate: allowed past the check (no rules service runs here: UNAVAILABLE).
        ch = tls_channel(target, pki, "admin")
        e = await call_put(ch)
        assert e.code() == grpc.StatusCode.UNAVAILABLE and "tiercel.ctl.rules.put" in e.details()
        await ch.close()


async def test_tcp_needs_certificates_unless_insecure_is_explicit(nats_broker, sock_dir, caplog):
    from tiercel.common.runtime import ServiceError

    cfg = apikit.api_config(nats_broker.url, sock_dir / "t.sock", **{"grpc.bind_address": "127.0.0.1:0"})
    with pytest.raises(ServiceError, match="needs a server certificate chain"):
        async with apikit.running_api(cfg):
            pass
    cfg = apikit.api_config(nats_broker.url, sock_dir / "t.sock",
                            **{"grpc.bind_address": "127.0.0.1:0", "grpc.insecure_tcp": True})
    async with apikit.running_api(cfg) as api:
        assert "INSECURE" in caplog.text
        ch = grpc.aio.insecure_channel(api.target("insecure"))
        assert await call_version(ch) == grpc.StatusCode.OK
        e = await call_put(ch)  # plaintext TCP never grants admin
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        await ch.close()


# A client that drops to another user after importing what it needs, then calls over the socket.
AS_USER = r'''
import os, sys
import grpc
from tiercel.pb.falco import rules_pb2, rules_pb2_grpc, version_pb2, version_pb2_grpc
target, uid, gid, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(g) for g in sys.argv[4:]]
os.setgroups(extra)
os.setgid(gid)
os.setuid(uid)
ch = grpc.insecure_channel(target)
out = []
for name, fn in (("version", lambda: version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=5)),
                 ("put", lambda: rules_pb2_grpc.serviceStub(ch).put(rules_pb2.put_request(name="a.yaml"), timeout=5))):
    try:
        fn()
        out.append(f"{name}=OK")
    except grpc.RpcError as e:
        out.append(f"{name}={e.code().name}")
print(" ".join(out))
'''


def as_user(target: str, uid: int, gid: int, *extra: int) -> str:
    p = subprocess.run([sys.executable, "-c", AS_USER, target, str(uid), str(gid), *map(str, extra)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users")
async def test_unix_socket_identities_from_peer_credentials(nats_broker, sock_dir):
    sock = sock_dir / "t.sock"
    cfg = apikit.api_config(nats_broker.url, sock, **{"grpc.socket_group": "65534", "grpc.admin_group": "4242"})
    async with apikit.running_api(cfg) as api:
        st = sock.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534
        target = api.target("unix")
        # root: admin (past the check; no rules service here)
        assert await asyncio.to_thread(as_user, target, 0, 0) == "version=OK put=UNAVAILABLE"
        # nobody in the socket's group: may read, may not change
        assert await asyncio.to_thread(as_user, target, 65534, 65534) == "version=OK put=PERMISSION_DENIED"
        # nobody, also in grpc.admin_group: admin
        assert await asyncio.to_thread(as_user, target, 65534, 65534, 4242) == "version=OK put=UNAVAILABLE"
        # a user outside the socket's group cannot connect at all (mode 0660)
        assert await asyncio.to_thread(as_user, target, 65533, 65533) == "version=UNAVAILABLE put=UNAVAILABLE"
        # every relay is cleaned up once its client is gone
        await wait_for(lambda: not api.auth.unix_peers, what="relays to close")
    assert not sock.exists()


def test_certs_init_writes_a_usable_pki(tmp_path):
    from cryptography import x509

    paths = certs.init(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key", "reader.crt", "reader.key"}
    assert stat.S_IMODE(paths["server.key"].stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate(paths["server.crt"].read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    with pytest.raises(FileExistsError):
        certs.init(tmp_path)
