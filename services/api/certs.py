"""`tiercel certs init DIR`: a local CA, a server certificate and two client certificates (admin, reader).

For running the API over mutual TLS on one machine or a lab; production should use its own PKI.
Keys are EC P-256; private keys are written mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
import socket
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_CN = "tiercel-admin"
READER_CN = "tiercel-reader"
SERVER_CN = "tiercel-api"


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        crt, key = directory / f"{name}.crt", directory / f"{name}.key"
        crt.write_bytes(self.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        os.chmod(key, 0o600)
        return crt, key


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tiercel"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "Tiercel local CA", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, cn: str, *, server: bool = False, hosts: list[str] | None = None, days: int = 825,
          not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None) -> Issued:
    """A leaf certificate signed by `ca`: a server's (with SANs) or a client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    start = not_before or now - datetime.timedelta(minutes=5)
    end = not_after or now + datetime.timedelta(days=days)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                               else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    if server:
        names: list[x509.GeneralName] = []
        for h in hosts or []:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(b.sign(ca.key, hashes.SHA256()), key)


def server_hosts() -> list[str]:
    hosts = ["localhost", "127.0.0.1", "::1"]
    name = socket.gethostname()
    if name and name not in hosts:
        hosts.append(name)
    return hosts


def init(directory: str | os.PathLike[str], force: bool = False) -> dict[str, pathlib.Path]:
    """Write ca, server, admin and reader certificates into `directory`; returns the paths."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if not force and (d / "ca.crt").exists():
        raise FileExistsError(f"{d / 'ca.crt'} exists; use --force to replace the CA and every certificate")
    ca = make_ca()
    paths: dict[str, pathlib.Path] = {}
    paths["ca.crt"], paths["ca.key"] = ca.write(d, "ca")
    paths["server.crt"], paths["server.key"] = issue(ca, SERVER_CN, server=True, hosts=server_hosts()).write(d, "server")
    paths["admin.crt"], paths["admin.key"] = issue(ca, ADMIN_CN).write(d, "admin")
    paths["reader.crt"], paths["reader.key"] = issue(ca, READER_CN).write(d, "reader")
    return paths
