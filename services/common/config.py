"""Configuration: one schema of keys, read from a YAML file, the environment and `-o key=value`.

Keys use falco.yaml's names where they mean the same thing (`priority`, `json_output`,
`outputs.rate`, `syscall_event_drops.*`, `grpc.*`, `rules_files`). Every value is validated at
start; a bad one is a `ConfigError` whose one-line message names the key and what is allowed.
The same schema validates live changes made through the configs store.

Precedence, lowest first: defaults, the YAML file, `TIERCEL_*` environment variables, `-o`.
"""

from __future__ import annotations

import difflib
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
DROP_ACTIONS = ("ignore", "log", "alert", "exit")
DEFAULT_SOCKET = "unix:///run/tiercel/tiercel.sock"


class ConfigError(ValueError):
    """A configuration problem, worded as one line for the user."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default, allowed values and whether it changes live."""

    name: str
    type: str  # bool | int | float | str | enum | list | priority
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    live: bool = False  # may be changed at runtime through the configs store
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None  # extra check: returns an error text

    @property
    def env(self) -> str:
        return "TIERCEL_" + self.name.upper().replace(".", "_")

    def describe_allowed(self) -> str:
        if self.type in ("enum", "priority"):
            return "one of " + ", ".join(self.choices)
        if self.type == "list" and self.choices:
            return "a list of " + ", ".join(self.choices)
        rng = ""
        if self.minimum is not None and self.maximum is not None:
            rng = f" between {self.minimum:g} and {self.maximum:g}"
        elif self.minimum is not None:
            rng = f" >= {self.minimum:g}"
        return {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
                "list": "a list of strings"}[self.type] + rng

    def coerce(self, value: Any) -> Any:
        """Validate and normalise a value (from YAML, or text from env/-o)."""
        bad = ConfigError(f"config key '{self.name}': invalid value {value!r}; expected {self.describe_allowed()}")
        t = self.type
        if isinstance(value, str) and t not in ("str", "enum", "priority"):
            value = _parse_text(value, t)
        if t == "bool":
            if not isinstance(value, bool):
                raise bad
        elif t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
        elif t == "str":
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise bad
        elif t in ("enum", "priority"):
            if not isinstance(value, str):
                raise bad
            v = value.strip().lower()
            if t == "priority" and v == "info":
                v = "informational"
            if v not in self.choices:
                raise bad
            value = v
        elif t == "list":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(x, str | int | float) for x in value):
                raise bad
            value = [str(x) for x in value]
            if self.choices:
                value = [x.lower() for x in value]
                if any(x not in self.choices for x in value):
                    raise bad
        if self.minimum is not None and t in ("int", "float") and value < self.minimum:
            raise bad
        if self.maximum is not None and t in ("int", "float") and value > self.maximum:
            raise bad
        if self.check is not None:
            err = self.check(value)
            if err:
                raise ConfigError(f"config key '{self.name}': {err}")
        return value


def _parse_text(text: str, type_: str) -> Any:
    """Text from the environment or `-o` as a typed value (YAML 1.1 booleans accepted)."""
    s = text.strip()
    if type_ == "bool":
        low = s.lower()
        if low in ("true", "yes", "on", "1", "y"):
            return True
        if low in ("false", "no", "off", "0", "n"):
            return False
        return text
    if type_ == "int":
        try:
            return int(s)
        except ValueError:
            return text
    if type_ == "float":
        try:
            return float(s)
        except ValueError:
            return text
    if type_ == "list":
        if s.startswith("["):
            try:
                v = yaml.safe_load(s)
            except yaml.YAMLError:
                return text
            return v if isinstance(v, list) else text
        return [x.strip() for x in s.split(",") if x.strip()]
    return text


def _check_bind(value: str) -> str | None:
    """One address, or several separated by commas (e.g. the unix socket and a mutual-TLS port)."""
    addrs = [a.strip() for a in value.split(",") if a.strip()]
    if not addrs:
        return "no address; expected unix:///path or host:port"
    for a in addrs:
        if a.startswith("unix://"):
            if len(a) == len("unix://"):
                return "a unix address needs a path, e.g. unix:///run/tiercel/tiercel.sock"
            continue
        host, sep, port = a.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            return f"invalid address {a!r}; expected unix:///path or host:port"
    return None


def _check_listen(value: str) -> str | None:
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        return f"invalid listen address {value!r}; expected host:port or :port"
    return None


def _check_nats_url(value: str) -> str | None:
    for u in filter(None, (x.strip() for x in value.split(","))):
        if not u.startswith(("nats://", "tls://", "ws://", "wss://")):
            return f"invalid NATS URL {u!r}; expected nats://host:port (or tls://, ws://, wss://)"
    return None


SCHEMA: tuple[Key, ...] = (
    # --- Falco engine and output behaviour (live) -------------------------------------------
    Key("priority", "priority", "debug", "Minimum rule priority that produces alerts.",
        choices=PRIORITIES, live=True),
    Key("rule_matching", "enum", "first", "Stop at the first matching rule per event, or emit all.",
        choices=("first", "all"), live=True),
    Key("json_output", "bool", False, "Print alerts as Falco's JSON instead of its text line.", live=True),
    Key("json_include_output_property", "bool", True, "JSON alerts carry `output`.", live=True),
    Key("json_include_tags_property", "bool", True, "JSON alerts carry `tags`.", live=True),
    Key("json_include_message_property", "bool", False, "JSON alerts carry `message`.", live=True),
    Key("json_include_output_fields_property", "bool", True, "JSON alerts carry `output_fields`.", live=True),
    Key("time_format_iso_8601", "bool", False, "Text alerts start with an ISO 8601 UTC time.", live=True),
    Key("outputs.rate", "float", 0.0, "Alerts per second refilled into the output token bucket; 0 = no limit.",
        live=True, minimum=0),
    Key("outputs.max_burst", "int", 1000, "Size of the output token bucket.", live=True, minimum=1),
    Key("syscall_event_drops.threshold", "float", 0.1, "Drop ratio above which drop actions run.",
        live=True, minimum=0, maximum=1),
    Key("syscall_event_drops.actions", "list", ["log", "alert"], "What to do when drops exceed the threshold.",
        choices=DROP_ACTIONS, live=True,
        check=lambda v: "'ignore' cannot be combined with other actions" if "ignore" in v and len(v) > 1 else None),
    Key("syscall_event_drops.rate", "float", 0.03333, "Drop actions per second (token bucket refill).",
        live=True, minimum=0),
    Key("syscall_event_drops.max_burst", "int", 1, "Drop actions token bucket size.", live=True, minimum=1),
    Key("syscall_event_drops.simulate_drops", "bool", False, "Pretend events are dropped (testing).", live=True),
    Key("rules_files", "list", [], "Rules files or directories loaded (seeded into the store on first start)."),
    Key("hostname", "str", "", "Host name put on events and alerts; default FALCO_HOSTNAME or the system's."),
    Key("log_level", "enum", "info", "Log verbosity.", choices=PRIORITIES + ("info",)),
    Key("state_dir", "str", "", "Where Tiercel keeps state (embedded NATS store); default per user."),
    # --- NATS ---------------------------------------------------------------------------------
    Key("nats.url", "str", "", "NATS server URL(s), comma-separated; empty starts an embedded nats-server.",
        check=_check_nats_url),
    Key("nats.user", "str", "", "NATS user name."),
    Key("nats.password", "str", "", "NATS password."),
    Key("nats.token", "str", "", "NATS token."),
    Key("nats.nkey_seed", "str", "", "Path of an NKey seed file."),
    Key("nats.creds", "str", "", "Path of a NATS credentials (.creds) file."),
    Key("nats.tls.ca", "str", "", "CA bundle to verify the NATS server."),
    Key("nats.tls.cert", "str", "", "Client certificate for NATS TLS."),
    Key("nats.tls.key", "str", "", "Client key for NATS TLS."),
    Key("nats.embedded.host", "str", "127.0.0.1", "Address the embedded nats-server listens on."),
    Key("nats.embedded.port", "int", 0, "Port of the embedded nats-server; 0 picks a free one.",
        minimum=0, maximum=65535),
    Key("nats.embedded.store_dir", "str", "", "JetStream store of the embedded server; default under state_dir."),
    Key("nats.replicas", "int", 1, "Replicas of Tiercel's streams and KV buckets (3 on a cluster).",
        minimum=1, maximum=5),
    # --- gRPC API -----------------------------------------------------------------------------
    Key("grpc.bind_address", "str", DEFAULT_SOCKET,
        "unix:///path (no TLS) or host:port (mutual TLS); several separated by commas.",
        check=_check_bind),
    Key("grpc.private_key", "str", "", "Server key (PEM) for the TCP listener."),
    Key("grpc.cert_chain", "str", "", "Server certificate chain (PEM) for the TCP listener."),
    Key("grpc.root_certs", "str", "", "CA (PEM) that client certificates must chain to."),
    Key("grpc.insecure_tcp", "bool", False, "Allow a plaintext TCP listener (never in production)."),
    Key("grpc.admin_subjects", "list", [], "Client certificate subjects (CN) allowed to change things."),
    Key("grpc.admin_group", "str", "", "Unix group whose members are admins on the unix socket."),
    Key("grpc.socket_group", "str", "", "Group owning the unix socket (mode 0660)."),
    Key("grpc.subscriber_queue", "int", 10000, "Per-subscriber alert queue bound.", minimum=1),
    Key("grpc.max_message_bytes", "int", 4 << 20, "Largest gRPC message accepted.", minimum=1024),
    # --- Ingest -------------------------------------------------------------------------------
    Key("ingest.driver", "enum", "audit", "Live event source.", choices=("audit", "proc_connector", "none")),
    Key("ingest.batch_size", "int", 256, "Events per bus message.", minimum=1, maximum=100_000),
    Key("ingest.batch_interval_ms", "int", 20, "Longest wait before a partial batch is sent.", minimum=1),
    Key("ingest.read_linger_ms", "float", 2.0, "When keeping up, how long the kernel reader lets records "
        "gather after a wakeup (fewer wakeups, less CPU per event; 0: read at once).", minimum=0, maximum=20),
    Key("ingest.queue_size", "int", 65536, "Bound of the internal event queue.", minimum=16),
    Key("ingest.audit_backlog_limit", "int", 32768, "Kernel audit backlog while ingest holds audit (records "
        "queued for the reader before the kernel drops and counts them; restored on exit).", minimum=64),
    Key("ingest.follow_rules", "bool", True, "Audit the syscalls the committed ruleset needs (KV tiercel_rules), "
        "following its changes; --event-types overrides."),
    Key("k8s_audit.enabled", "bool", True, "Serve the k8s audit webhook."),
    Key("k8s_audit.listen", "str", ":9765", "host:port of the k8s audit webhook.", check=_check_listen),
    Key("k8s_audit.path", "str", "/k8s-audit", "Path of the k8s audit webhook."),
    Key("k8s_audit.max_body", "int", 12_582_912, "Largest webhook body in bytes.", minimum=1),
    Key("k8s_audit.max_event", "int", 262_144, "Largest single audit event in bytes.", minimum=1),
    # --- Rules workers ------------------------------------------------------------------------
    Key("rules.workers", "int", 2, "Rules workers started by `tiercel up`.", minimum=1, maximum=64),
    Key("rules.ack_wait_s", "float", 10.0, "Seconds a worker may hold an event batch unacknowledged before "
        "JetStream redelivers it to another worker (the shared consumer's ack wait).", minimum=0.5, maximum=600),
    Key("rules.fetch_batch", "int", 16, "Event batches a worker pulls at once.", minimum=1, maximum=1024),
    Key("rules.max_inflight", "int", 64, "Event batches a worker holds between delivery and ack.",
        minimum=1, maximum=10_000),
    Key("rules.behind_s", "float", 2.0, "A worker is behind when batches waited longer than this in the events "
        "stream; it raises `Falco internal: rules worker behind` (syscall_event_drops actions). 0 = never.",
        live=True, minimum=0),
    # --- Metrics ------------------------------------------------------------------------------
    Key("metrics.enabled", "bool", True, "Serve Prometheus metrics."),
    Key("metrics.address", "str", "127.0.0.1", "Address of the metrics endpoints."),
    Key("metrics.ingest_port", "int", 9376, "Metrics port of ingest.", minimum=0, maximum=65535),
    Key("metrics.api_port", "int", 9377, "Metrics port of the API.", minimum=0, maximum=65535),
    Key("metrics.rules_port", "int", 9380, "Metrics port of rules worker 0 (worker i uses +i).",
        minimum=0, maximum=65535),
)

KEYS: dict[str, Key] = {k.name: k for k in SCHEMA}

# falco.yaml keys that mean nothing to Tiercel. They are accepted (and ignored, with a warning) so
# a user can start from their falco.yaml.
FALCO_KEYS_IGNORED = frozenset({
    "config_files", "watch_config_files", "rules_file", "rule", "load_plugins", "plugins", "engine",
    "stdout_output", "syslog_output", "file_output", "http_output", "program_output", "grpc_output",
    "grpc.enabled", "grpc.threadiness", "webserver", "log_stderr", "log_syslog", "libs_logger",
    "buffered_outputs", "outputs_queue", "metrics.interval", "metrics.output_rule", "base_syscalls",
    "falco_libs", "container_engines", "append_output", "static_fields", "capture",
})


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name not in KEYS:
            if not v:
                yield name, v
            yield from _flatten(v, name + ".")
        else:
            yield name, v


def unknown_key_error(name: str) -> ConfigError:
    near = difflib.get_close_matches(name, KEYS, n=1)
    hint = f"; did you mean '{near[0]}'?" if near else "; `tiercel config keys` lists the valid keys"
    return ConfigError(f"unknown config key '{name}'{hint}")


class Config(Mapping[str, Any]):
    """Validated configuration values by key. Immutable; `with_values` derives a new one."""

    def __init__(self, values: Mapping[str, Any] | None = None, warnings: list[str] | None = None):
        self._values = {k.name: k.default for k in SCHEMA}
        self.warnings: list[str] = list(warnings or [])
        for name, value in (values or {}).items():
            self._values[name] = validate(name, value)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def with_values(self, values: Mapping[str, Any]) -> Config:
        merged = dict(self._values)
        for name, value in values.items():
            merged[name] = validate(name, value)
        return Config(merged, self.warnings)

    def section(self, prefix: str) -> dict[str, Any]:
        """Keys under `prefix.` with the prefix removed."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self._values.items() if k.startswith(p)}

    @property
    def hostname(self) -> str:
        import socket

        return self["hostname"] or os.environ.get("FALCO_HOSTNAME") or socket.gethostname()

    @property
    def state_dir(self) -> pathlib.Path:
        if self["state_dir"]:
            return pathlib.Path(self["state_dir"])
        if os.geteuid() == 0:
            return pathlib.Path("/var/lib/tiercel")
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        return pathlib.Path(base) / "tiercel"


def validate(name: str, value: Any) -> Any:
    key = KEYS.get(name)
    if key is None:
        raise unknown_key_error(name)
    return key.coerce(value)


def parse_override(text: str) -> tuple[str, str]:
    """`key=value` from `-o`."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"invalid override {text!r}; expected key=value, e.g. -o priority=warning")
    return name.strip(), value


def load(path: str | os.PathLike[str] | None = None, overrides: Iterable[str] = (),
         environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from the file, the environment and `-o` overrides."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    if path:
        p = pathlib.Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"config file {p} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
        if tree is None:
            tree = {}
        if not isinstance(tree, Mapping):
            raise ConfigError(f"config file {p} must hold a YAML mapping of keys, not {type(tree).__name__}")
        for name, value in _flatten(tree):
            if name in KEYS:
                values[name] = value
            elif name in FALCO_KEYS_IGNORED or name.split(".")[0] in FALCO_KEYS_IGNORED:
                warnings.append(f"config file {p}: falco.yaml key '{name}' has no meaning in Tiercel; ignored")
            else:
                raise unknown_key_error(name)
    env = os.environ if environ is None else environ
    for key in SCHEMA:
        if key.env in env:
            values[key.name] = env[key.env]
    for text in overrides:
        name, value = parse_override(text)
        if name not in KEYS:
            raise unknown_key_error(name)
        values[name] = value
    return Config(values, warnings)
