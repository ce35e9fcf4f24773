"""Helpers for the API tests: a real API server on a real nats-server, alerts published onto NATS,
certificates, and a client generated at test time from Falco 0.43's own proto files."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import pathlib
import subprocess
import sys
from typing import Any

import nats

from tiercel.api.server import ApiServer
from tiercel.common import bus, natsconn
from tiercel.common.config import Config

# Falco 0.43's proto files as shipped (falcosecurity/falco userspace/falco/*.proto at 33a2ce53):
# packages falco.outputs / falco.version / falco.schema, the response fields of falco-api.md §1.1,
# empty requests. Tiercel's code is not used to build this client.
FALCO_SCHEMA = """syntax = "proto3";
package falco.schema;
option go_package = "github.com/falcosecurity/client-go/pkg/api/schema";
enum priority {
  option allow_alias = true;
  EMERGENCY = 0; emergency = 0; Emergency = 0;
  ALERT = 1; alert = 1; Alert = 1;
  CRITICAL = 2; critical = 2; Critical = 2;
  ERROR = 3; error = 3; Error = 3;
  WARNING = 4; warning = 4; Warning = 4;
  NOTICE = 5; notice = 5; Notice = 5;
  INFORMATIONAL = 6; informational = 6; Informational = 6;
  DEBUG = 7; debug = 7; Debug = 7;
}
enum source {
  option allow_alias = true;
  SYSCALL = 0; syscall = 0; Syscall = 0;
  K8S_AUDIT = 1; k8s_audit = 1; K8s_audit = 1; K8S_audit = 1;
  INTERNAL = 2; internal = 2; Internal = 2;
  PLUGIN = 3; plugin = 3; Plugin = 3;
}
"""
FALCO_OUTPUTS = """syntax = "proto3";
import "google/protobuf/timestamp.proto";
import "schema.proto";
package falco.outputs;
option go_package = "github.com/falcosecurity/client-go/pkg/api/outputs";
service service {
  rpc sub(stream request) returns (stream response);
  rpc get(request) returns (stream response);
}
message request {
  // TODO: tags not supported yet, keeping it for reference.
  // repeated string tags = 1;
}
message response {
  google.protobuf.Timestamp time = 1;
  falco.schema.priority priority = 2;
  falco.schema.source source_deprecated = 3 [deprecated=true];
  string rule = 4;
  string output = 5;
  map<string, string> output_fields = 6;
  string hostname = 7;
  repeated string tags = 8;
  string source = 9;
}
"""
FALCO_VERSION = """syntax = "proto3";
package falco.version;
option go_package = "github.com/falcosecurity/client-go/pkg/api/version";
service service {
  rpc version(request) returns (response);
}
message request {}
message response {
  string version = 1;
  uint32 major = 2;
  uint32 minor = 3;
  uint32 patch = 4;
  string prerelease = 5;
  string build = 6;
  uint32 engine_minor = 7;
  string engine_fields_checksum = 8;
  uint32 engine_major = 9;
  uint32 engine_patch = 10;
  string engine_version = 11;
}
"""

# The client, as a Falco user would write it with client-py's channel set-up: a unix socket is an
# insecure channel, anything else mutual TLS; `sub` sends an empty request every 0.1 s forever.
FALCO_CLIENT = r'''
import json, sys, threading, time
import grpc
import outputs_pb2, outputs_pb2_grpc, version_pb2, version_pb2_grpc

mode, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
cert, key, ca = (sys.argv[4:7] + [None, None, None])[:3]
if target.startswith("unix://"):
    ch = grpc.insecure_channel(target)
else:
    creds = grpc.ssl_channel_credentials(open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read())
    ch = grpc.secure_channel(target, creds)

def dump(r):
    return {"time": [r.time.seconds, r.time.nanos], "priority": r.priority,
            "source_deprecated": r.source_deprecated, "rule": r.rule, "output": r.output,
            "output_fields": dict(r.output_fields), "hostname": r.hostname, "tags": list(r.tags),
            "source": r.source}

try:
    if mode == "version":
        v = version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=10)
        print(json.dumps({"version": v.version, "major": v.major, "minor": v.minor, "patch": v.patch,
                          "engine_version": v.engine_version, "engine_major": v.engine_major,
                          "engine_minor": v.engine_minor, "engine_patch": v.engine_patch,
                          "checksum": v.engine_fields_checksum}))
    elif mode == "get":
        for r in outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=30):
            print(json.dumps(dump(r)))
    else:
        stop = threading.Event()
        def polls():
            while not stop.is_set():
                yield outputs_pb2.request()
                time.sleep(0.1)
        call = outputs_pb2_grpc.serviceStub(ch).sub(polls(), timeout=60)
        print("SUBSCRIBED", flush=True)
        n = 0
        for r in call:
            print(json.dumps(dump(r)), flush=True)
            n += 1
            if n >= count:
                break
        stop.set()
        call.cancel()
except grpc.RpcError as e:
    print(json.dumps({"error": e.code().name, "details": e.details()}), flush=True)
    sys.exit(3)
'''


def build_falco_client(directory: pathlib.Path) -> pathlib.Path:
    """Write Falco's protos and the client into `directory` and generate the Python code there."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schema.proto").write_text(FALCO_SCHEMA)
    (directory / "outputs.proto").write_text(FALCO_OUTPUTS)
    (directory / "version.proto").write_text(FALCO_VERSION)
    (directory / "falco_client.py").write_text(FALCO_CLIENT)
    include = importlib.resources.files("grpc_tools") / "_proto"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{directory}", f"-I{include}",
                    f"--python_out={directory}", f"--grpc_python_out={directory}",
                    "schema.proto", "outputs.proto", "version.proto"], check=True, cwd=directory)
    return directory / "falco_client.py"


def falco_client(client: pathlib.Path, mode: str, target: str, count: int = 0, tls: tuple = (),
                 timeout: float = 60) -> subprocess.Popen:
    """Start the Falco client in its own process (its falco.* descriptors never meet Tiercel's)."""
    return subprocess.Popen([sys.executable, str(client), mode, target, str(count), *map(str, tls)],
                            cwd=client.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(client.parent), "PATH": "/usr/bin:/bin"})


def read_results(p: subprocess.Popen, timeout: float = 60) -> list[dict[str, Any]]:
    out, err = p.communicate(timeout=timeout)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if p.returncode not in (0, 3):
        raise AssertionError(f"falco client exited {p.returncode}: {err[-2000:]}")
    return lines


def wait_subscribed(p: subprocess.Popen, timeout: float = 20) -> None:
    line = p.stdout.readline()
    if line.strip() != "SUBSCRIBED":
        raise AssertionError(f"falco client did not subscribe: {line!r} {p.stderr.read()[-2000:]}")


def make_alert(i: int, *, priority: str = "Warning", rule: str = "Read sensitive file untrusted",
               source: str = "syscall", host: str = "node-1", tags: list[str] | None = None,
               fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "hostname": host, "id": f"{host}:{i}:{bus.slug(rule)[:8]}",
        "output": f"13:53:31.726060287: {priority} Sensitive file opened (file=/etc/shadow n={i})",
        "output_fields": fields if fields is not None else
        {"evt.time": 1718000000123456789 + i, "fd.name": "/etc/shadow", "proc.name": "cat", "evt.num": i,
         "proc.pname": None, "fd.num": 3.5, "user.loginuid": -1, "evt.is_open_read": True},
        "priority": priority, "rule": rule, "seq": i, "source": source,
        "tags": tags if tags is not None else ["filesystem", "mitre_credential_access"],
        "time": f"2024-06-10T06:13:20.{i:09d}Z",
    }


async def publish(nc: Any, alerts: list[dict[str, Any]], flush: bool = True) -> None:
    for a in alerts:
        body, headers = bus.encode_alert(a)
        await nc.publish(bus.alert_subject(a["priority"], a["source"], a["rule"]), body, headers=headers)
    if flush:
        await nc.flush()


def api_config(broker_url: str, sock: pathlib.Path, **values: Any) -> Config:
    v = {"nats.url": broker_url, "grpc.bind_address": f"unix://{sock}", "metrics.enabled": False,
         "state_dir": str(sock.parent / "state")}
    v.update(values)
    return Config(v)


@contextlib.asynccontextmanager
async def running_api(cfg: Config, host: str = "test-host"):
    """An ApiServer in this event loop, with its own NATS connection and Tiercel's streams."""
    nc = await nats.connect(cfg["nats.url"], name="test-api")
    js = nc.jetstream()
    await natsconn.ensure_streams(js)
    api = ApiServer(cfg, nc, js, host=host, instance="api-test", control_timeout=3.0)
    await api.start()
    try:
        yield api
    finally:
        await api.stop(0.5)
        await nc.close()
