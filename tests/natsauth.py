"""NATS authentication for tests: NKeys, decentralized JWT auth (operator, account, user) and
`.creds` files, and nats-server configuration blocks for each way a Tiercel service can log in.

Everything is generated here with the `nkeys` library (Ed25519): no `nsc`, no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass

import nkeys


@dataclass(frozen=True)
class NKey:
    seed: str  # "SU...", "SA...", "SO..."
    public: str  # "U...", "A...", "O..."

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(self.seed.encode()).sign(data)


def new_nkey(kind: str = "user") -> NKey:
    prefix = {"user": nkeys.PREFIX_BYTE_USER, "account": nkeys.PREFIX_BYTE_ACCOUNT,
              "operator": nkeys.PREFIX_BYTE_OPERATOR}[kind]
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    kp = nkeys.from_seed(bytearray(seed))
    return NKey(seed.decode(), kp.public_key.decode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(issuer: NKey, subject: str, name: str, nats: dict) -> str:
    """A NATS JWT (alg ed25519-nkey) issued by `issuer` for `subject`."""
    claims = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject, "nats": nats}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = _b64(issuer.sign(f"{head}.{body}".encode()))
    return f"{head}.{body}.{sig}"


_UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True,
              "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


@dataclass
class Operator:
    """An operator, a system account, one account with JetStream, and one user of it."""

    operator: NKey
    system: NKey
    account: NKey
    user: NKey
    operator_jwt: str
    system_jwt: str
    account_jwt: str
    user_jwt: str

    def server_config(self) -> str:
        return (f"operator: {self.operator_jwt}\n"
                f"system_account: {self.system.public}\n"
                "resolver: MEMORY\n"
                f"resolver_preload: {{\n  {self.system.public}: {self.system_jwt}\n"
                f"  {self.account.public}: {self.account_jwt}\n}}\n")

    def creds(self) -> str:
        return ("-----BEGIN NATS USER JWT-----\n" f"{self.user_jwt}\n" "------END NATS USER JWT------\n\n"
                "************************* IMPORTANT *************************\n"
                "NKEY Seed printed below can be used to sign and prove identity.\n\n"
                "-----BEGIN USER NKEY SEED-----\n" f"{self.user.seed}\n" "------END USER NKEY SEED------\n")


def new_operator() -> Operator:
    op, sys_, acc, user = new_nkey("operator"), new_nkey("account"), new_nkey("account"), new_nkey("user")
    op_jwt = jwt(op, op.public, "tiercel-test-operator", {"type": "operator", "version": 2,
                                                           "system_account": sys_.public})
    sys_jwt = jwt(op, sys_.public, "SYS", {"limits": {**_UNLIMITED, "mem_storage": 0, "disk_storage": 0,
                                                      "streams": 0, "consumer": 0},
                                           "type": "account", "version": 2})
    acc_jwt = jwt(op, acc.public, "TIERCEL", {"limits": _UNLIMITED, "type": "account", "version": 2})
    user_jwt = jwt(acc, user.public, "tiercel", {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                                                  "type": "user", "version": 2})
    return Operator(op, sys_, acc, user, op_jwt, sys_jwt, acc_jwt, user_jwt)


def users_config(users: list[dict]) -> str:
    """An `authorization { users = [...] }` block (user/password entries and nkey entries)."""
    entries = []
    for u in users:
        entries.append("{ " + ", ".join(f"{k}: {json.dumps(v)}" for k, v in u.items()) + " }")
    return "authorization {\n  users = [\n    " + "\n    ".join(entries) + "\n  ]\n}\n"


def token_config(token: str) -> str:
    return f"authorization {{\n  token: {json.dumps(token)}\n}}\n"
