"""Who is calling, and may they change things: identities on the unix socket and over mutual TLS.

gRPC's Python API does not expose the peer credentials of a unix-socket connection, so the public
socket is served by `UnixFront`: it accepts each connection itself, reads the peer's uid, gid and
pid with SO_PEERCRED, and relays the bytes to the gRPC server's private socket from a client
socket bound to a path of its own. gRPC reports that path as the call's peer, which maps back to
the credentials. The private socket lives in a 0700 directory, so no one can bypass the front.

Over TCP the identity is the client certificate's subject (mutual TLS is required); a plaintext
TCP listener (`grpc.insecure_tcp`) never grants admin.
"""

from __future__ import annotations

import asyncio
import grp
import itertools
import logging
import os
import pathlib
import shutil
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from typing import Any

import grpc

from tiercel.common.runtime import ServiceError

log = logging.getLogger("tiercel.api")


@dataclass(frozen=True)
class Identity:
    """The caller of one RPC."""

    transport: str  # unix | tls | insecure
    name: str  # for logs and errors: "uid=1000 pid=42", "CN=alice", "ipv4:127.0.0.1:5555"
    admin: bool
    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    subject: str = ""


ANONYMOUS = Identity("unknown", "unknown peer", False)


def peer_groups(pid: int) -> set[int]:
    """Supplementary groups of a process (from /proc), empty when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        pass
    return set()


def group_id(name: str) -> int | None:
    if not name:
        return None
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ServiceError(f"unknown group {name!r} (grpc.socket_group / grpc.admin_group)") from None


class Authorizer:
    """Maps a call to an Identity and enforces admin-only methods."""

    def __init__(self, admin_subjects: list[str], admin_gid: int | None):
        self.admin_subjects = set(admin_subjects)
        self.admin_gid = admin_gid
        self.unix_peers: dict[str, Identity] = {}  # relay socket path -> identity

    def unix_identity(self, pid: int, uid: int, gid: int) -> Identity:
        admin = uid == 0 or (self.admin_gid is not None and (gid == self.admin_gid
                                                            or self.admin_gid in peer_groups(pid)))
        return Identity("unix", f"uid={uid} gid={gid} pid={pid}", admin, uid=uid, gid=gid, pid=pid)

    def identify(self, context: grpc.aio.ServicerContext) -> Identity:
        peer = context.peer() or ""
        if peer.startswith("unix:"):
            return self.unix_peers.get(peer[5:], ANONYMOUS)
        auth = context.auth_context() or {}
        kind = (auth.get("transport_security_type") or [b""])[0]
        if kind == b"ssl":
            cn = (auth.get("x509_common_name") or [b""])[0].decode(errors="replace")
            subject = (auth.get("x509_subject") or [b""])[0].decode(errors="replace")
            admin = bool(cn and cn in self.admin_subjects) or bool(subject and subject in self.admin_subjects)
            return Identity("tls", f"CN={cn}" if cn else subject or peer, admin, subject=subject or f"CN={cn}")
        return Identity("insecure", peer, False)

    async def require_admin(self, context: grpc.aio.ServicerContext, what: str) -> Identity:
        ident = self.identify(context)
        if not ident.admin:
            how = {"unix": "run as root or as a member of grpc.admin_group",
                   "tls": "use a client certificate whose subject is listed in grpc.admin_subjects",
                   "insecure": "plaintext TCP never grants admin; use the unix socket or mutual TLS"}
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"{what} needs an admin identity; caller is {ident.name} "
                                f"({how.get(ident.transport, 'not an admin')})")
        return ident


# ----------------------------------------------------------------------------------------------
# The unix socket front
# ----------------------------------------------------------------------------------------------


class _Half(asyncio.Protocol):
    """One side of a relayed connection; writes what it reads into its peer, with backpressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: _Half | None = None
        self.pending: list[bytes] = []
        self.on_close: Any = None
        self.on_made: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for d in self.pending:
            transport.write(d)  # type: ignore[attr-defined]
        self.pending.clear()
        if self.on_made is not None:
            cb, self.on_made = self.on_made, None
            cb(self)

    def data_received(self, data: bytes) -> None:
        o = self.other
        if o is None:
            return
        if o.transport is not None:
            o.transport.write(data)
        else:
            o.pending.append(data)

    def eof_received(self) -> bool:
        # HTTP/2 peers never half-close a live connection: EOF means gone. Closing this side
        # (return False) closes the other one too, in connection_lost.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        o = self.other
        if o is not None and o.transport is not None:
            o.transport.close()
        if self.on_close is not None:
            cb, self.on_close = self.on_close, None
            cb()

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()


class UnixFront:
    """The public unix socket: checks peer credentials, relays to gRPC's private socket."""

    def __init__(self, path: str, authorizer: Authorizer, group: str = "", mode: int = 0o660):
        self.path = pathlib.Path(path)
        self.authorizer = authorizer
        self.group = group
        self.mode = mode
        self.private = pathlib.Path(tempfile.mkdtemp(prefix="tiercel-api-"))  # 0700
        self.inner = str(self.private / "grpc.sock")
        self._server: asyncio.base_events.Server | None = None
        self._n = itertools.count(1)
        self._conns: set[_Half] = set()

    @property
    def inner_address(self) -> str:
        return f"unix://{self.inner}"

    async def start(self) -> None:
        gid = group_id(self.group)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ServiceError(f"cannot create {self.path.parent}: {e.strerror}") from None
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise ServiceError(f"{self.path} exists and is not a socket; remove it or change grpc.bind_address")
            if _socket_alive(str(self.path)):
                raise ServiceError(f"{self.path} is in use by another server; stop it or change grpc.bind_address")
            self.path.unlink()
        old = os.umask(0o777 & ~self.mode)
        try:
            self._server = await asyncio.get_running_loop().create_unix_server(self._accept, str(self.path))
        except OSError as e:
            raise ServiceError(f"cannot listen on unix://{self.path}: {e.strerror}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        if gid is not None:
            os.chown(self.path, -1, gid)

    def _accept(self) -> _Half:
        outer, inner = _Half(), _Half()
        outer.other, inner.other = inner, outer  # bytes read before the relay connects wait in `pending`
        outer.on_made = lambda _h: asyncio.get_running_loop().create_task(self._connect(outer, inner))
        return outer

    async def _connect(self, outer: _Half, inner: _Half) -> None:
        t = outer.transport
        if t is None:
            return
        sock = t.get_extra_info("socket")
        try:
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                struct.calcsize("3i")))
        except OSError:
            t.close()
            return
        relay_path = str(self.private / f"p{next(self._n)}")
        self.authorizer.unix_peers[relay_path] = self.authorizer.unix_identity(pid, uid, gid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        loop = asyncio.get_running_loop()

        def forget() -> None:
            self.authorizer.unix_peers.pop(relay_path, None)
            self._conns.discard(outer)
            try:
                os.unlink(relay_path)
            except OSError:
                pass

        outer.on_close = forget
        self._conns.add(outer)
        try:
            s.bind(relay_path)
            s.setblocking(False)
            await loop.sock_connect(s, self.inner)
            await loop.create_unix_connection(lambda: inner, sock=s)
        except OSError as e:
            log.warning("unix socket relay failed: %s", e)
            s.close()
            t.close()
            forget()
            return
        if t.is_closing() and inner.transport is not None:
            inner.transport.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.close()
        try:
            if self.path.is_socket():
                self.path.unlink()
        except OSError:
            pass
        shutil.rmtree(self.private, ignore_errors=True)


def _socket_alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ----------------------------------------------------------------------------------------------
# TLS
# ----------------------------------------------------------------------------------------------


def _read(path: str, what: str, key: str) -> bytes:
    if not path:
        raise ServiceError(f"a TCP listener needs {what} ({key}); or listen on unix:///run/tiercel/tiercel.sock")
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ServiceError(f"cannot read {what} {path} ({key}): {e.strerror}") from None


def server_credentials(cert_chain: str, private_key: str, root_certs: str) -> grpc.ServerCredentials:
    """Mutual TLS: the server's certificate and key, and the CA every client certificate must chain to."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    chain = _read(cert_chain, "a server certificate chain", "grpc.cert_chain")
    key = _read(private_key, "a server private key", "grpc.private_key")
    ca = _read(root_certs, "the client CA", "grpc.root_certs")
    for data, what, path in ((chain, "certificate chain", cert_chain), (ca, "CA certificate", root_certs)):
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError as e:
            raise ServiceError(f"{path}: not a PEM {what}: {e}") from None
    try:
        load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as e:
        raise ServiceError(f"{private_key}: not an unencrypted PEM private key: {e}") from None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=ca, require_client_auth=True)
