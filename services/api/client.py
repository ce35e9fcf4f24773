"""Client side of the API for Tiercel's own commands: channels with the right credentials."""

from __future__ import annotations

import pathlib

import grpc


class ClientError(ValueError):
    """Bad client options (missing certificate files, ...), worded for the user."""


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ClientError(f"cannot read {what} {path}: {e.strerror}") from None


def normalize(target: str) -> str:
    """`/run/tiercel/tiercel.sock` and `unix:/path` become unix:///path; host:port stays."""
    if target.startswith("/"):
        return "unix://" + target
    if target.startswith("unix:") and not target.startswith("unix://"):
        return "unix://" + target[len("unix:"):]
    return target


def credentials(cert: str | None, key: str | None, ca: str | None) -> grpc.ChannelCredentials:
    if bool(cert) != bool(key):
        raise ClientError("--cert and --key go together (the client certificate and its key)")
    if not cert:
        raise ClientError("a TCP address needs mutual TLS: give --cert, --key and --ca "
                          "(see `tiercel certs init`), or --insecure for a plaintext test server")
    return grpc.ssl_channel_credentials(root_certificates=_read(ca, "CA certificate"),
                                        private_key=_read(key, "client key"),
                                        certificate_chain=_read(cert, "client certificate"))


def aio_channel(target: str, cert: str | None = None, key: str | None = None, ca: str | None = None,
                insecure: bool = False, options: list | None = None) -> grpc.aio.Channel:
    target = normalize(target)
    opts = [("grpc.max_receive_message_length", 64 << 20), *(options or [])]
    if target.startswith("unix://") or insecure:
        return grpc.aio.insecure_channel(target, options=opts)
    return grpc.aio.secure_channel(target, credentials(cert, key, ca), options=opts)


def channel(target: str, cert: str | None = None, key: str | None = None, ca: str | None = None,
            insecure: bool = False, options: list | None = None) -> grpc.Channel:
    target = normalize(target)
    opts = [("grpc.max_receive_message_length", 64 << 20), *(options or [])]
    if target.startswith("unix://") or insecure:
        return grpc.insecure_channel(target, options=opts)
    return grpc.secure_channel(target, credentials(cert, key, ca), options=opts)
