"""`tiercel api`, `tiercel certs init`, and the gRPC side of `tiercel alerts` / `tiercel version`.

`tiercel alerts` lives in tiercel.cli.alerts (NATS mode); with `--grpc ADDR` it calls `tail_grpc`
here. `tiercel version --grpc ADDR` calls `remote_version`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, fail, load_config


def api(
    config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
    bind: Annotated[list[str] | None, typer.Option(
        "--bind", help="Listen here (repeatable): unix:///path, or host:port with mutual TLS. "
                       "Default grpc.bind_address (unix:///run/tiercel/tiercel.sock).")] = None,
    insecure_tcp: Annotated[bool, typer.Option(
        "--insecure-tcp", help="Allow a plaintext TCP listener (tests only: no TLS, nobody is admin).")] = False,
) -> None:
    """Run the gRPC API: Falco's outputs and version services, plus drops, inputs, rules, configs."""
    from tiercel.api.server import serve
    from tiercel.common import runtime
    from tiercel.common.log import setup

    extra = list(option or [])
    if bind:
        extra.append("grpc.bind_address=" + ",".join(bind))
    if insecure_tcp:
        extra.append("grpc.insecure_tcp=true")
    cfg = load_config(config, extra, nats_url)
    if not cfg["nats.url"]:
        fail("tiercel api needs a NATS server: give --nats-url (or TIERCEL_NATS_URL); "
             "`tiercel up` runs everything with an embedded one")
    setup(cfg["log_level"], "api")
    raise typer.Exit(runtime.run(lambda stop: serve(cfg, stop), "api"))


certs_app = typer.Typer(help="Certificates for the API's mutual TLS.", no_args_is_help=True)


@certs_app.command("init")
def certs_init(
    directory: Annotated[str, typer.Argument(help="Where to write ca, server, admin and reader certificates.")],
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Create a local CA, a server certificate (localhost, 127.0.0.1, this host) and two client
    certificates: admin (CN tiercel-admin) and read-only (CN tiercel-reader)."""
    from tiercel.api import certs

    try:
        paths = certs.init(directory, force=force)
    except FileExistsError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write certificates to {directory}: {e.strerror or e}")
    for name, p in paths.items():
        print(f"{name:12} {p}")
    print(f"\nServe:  tiercel api --bind 127.0.0.1:5060 -o grpc.cert_chain={paths['server.crt']} "
          f"-o grpc.private_key={paths['server.key']} -o grpc.root_certs={paths['ca.crt']} "
          f"-o grpc.admin_subjects={certs.ADMIN_CN}")
    print(f"Client: tiercel alerts --grpc localhost:5060 --cert {paths['reader.crt']} "
          f"--key {paths['reader.key']} --ca {paths['ca.crt']}")


# ------------------------------------------------------------------------------------------------
# Client side
# ------------------------------------------------------------------------------------------------


@dataclass
class GrpcTarget:
    address: str
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    insecure: bool = False


@dataclass
class AlertQuery:
    priority: str | None = None
    rules: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    condition: str = ""
    resume_after: str = ""


def response_to_alert(r: Any) -> dict[str, Any]:
    """A `falco.outputs.response` as Falco's JSON alert (+ id, seq); output_fields stay strings."""
    from tiercel.api.alerts import PRIORITY_NAMES, format_time

    return {"hostname": r.hostname, "id": r.id, "output": r.output, "output_fields": dict(r.output_fields),
            "priority": PRIORITY_NAMES[r.priority].capitalize(), "rule": r.rule, "seq": r.seq,
            "source": r.source, "tags": list(r.tags), "time": format_time(r.time.seconds, r.time.nanos)}


def tail_grpc(target: GrpcTarget, query: AlertQuery, json_out: bool, count: int, color: bool,
              render: Any) -> int:
    """Stream alerts from a Tiercel API; reconnect and resume after the last alert seen."""
    import grpc

    from tiercel.api.alerts import priority_number
    from tiercel.api.client import ClientError, aio_channel
    from tiercel.common import bus
    from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc

    req = outputs_pb2.request(rules=query.rules, sources=query.sources, tags=query.tags,
                              hostnames=query.hostnames, condition=query.condition,
                              resume_after_id=query.resume_after)
    if query.priority:
        try:
            req.min_priority = priority_number(query.priority)
        except bus.BadEnvelope as e:
            fail(str(e))

    async def main() -> int:
        seen = 0
        last_id = query.resume_after
        backoff = 0.5
        while True:
            if last_id:
                req.resume_after_id = last_id
            try:
                ch = aio_channel(target.address, target.cert, target.key, target.ca, target.insecure)
            except ClientError as e:
                fail(str(e))
            try:
                call = outputs_pb2_grpc.serviceStub(ch).sub_batch(_requests(req))
                async for batch in call:
                    backoff = 0.5
                    for r in batch.alerts:
                        if r.dropped_before:
                            print(f"tiercel alerts: {r.dropped_before} alerts dropped before this one "
                                  "(this client read too slowly)", file=sys.stderr)
                        a = response_to_alert(r)
                        line = json.dumps(a, sort_keys=True, ensure_ascii=False) if json_out else render(a, color)
                        sys.stdout.write(line + "\n")
                        last_id = r.id or last_id
                        seen += 1
                        if count and seen >= count:
                            sys.stdout.flush()
                            return 0
                    sys.stdout.flush()
                return 0
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    fail(f"{target.address}: {e.code().name}: {e.details()}")
                print(f"tiercel alerts: {target.address} unavailable ({e.details()}); retrying in {backoff:g}s",
                      file=sys.stderr)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except BrokenPipeError:
                return 0
            finally:
                await ch.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


async def _requests(req: Any):
    yield req
    await asyncio.Event().wait()  # keep the request side open; the server needs nothing more


def remote_version(target: GrpcTarget) -> dict[str, Any]:
    """The version service of a running API (Falco's falco.version.service)."""
    import grpc

    from tiercel.api.client import ClientError, channel
    from tiercel.pb.falco import version_pb2, version_pb2_grpc

    try:
        ch = channel(target.address, target.cert, target.key, target.ca, target.insecure)
    except ClientError as e:
        fail(str(e))
    try:
        v = version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=10)
    except grpc.RpcError as e:
        fail(f"{target.address}: {e.code().name}: {e.details()}")
    finally:
        ch.close()
    return {"version": v.version, "major": v.major, "minor": v.minor, "patch": v.patch,
            "prerelease": v.prerelease, "build": v.build, "engine_version": v.engine_version,
            "engine_major": v.engine_major, "engine_minor": v.engine_minor, "engine_patch": v.engine_patch,
            "engine_fields_checksum": v.engine_fields_checksum}


# Options shared by the client commands.
GrpcOpt = Annotated[str | None, typer.Option("--grpc", help="Ask a running API at this address "
                                                            "(unix:///run/tiercel/tiercel.sock or host:port).")]
CertOpt = Annotated[str | None, typer.Option("--cert", help="Client certificate (PEM) for mutual TLS.")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Client key (PEM) for mutual TLS.")]
CaOpt = Annotated[str | None, typer.Option("--ca", help="CA (PEM) that signed the server certificate.")]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="Plaintext TCP (a test server started with "
                                                              "--insecure-tcp).")]


def register(app: typer.Typer) -> None:
    app.command("api")(api)
    app.add_typer(certs_app, name="certs")
