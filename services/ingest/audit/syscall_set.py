"""Which syscalls to audit: the ones the loaded rules' event types need, plus what the state
engine needs to keep its thread and fd tables right (Falco's interesting syscalls plus its
`base_syscalls` state set), turned into audit rules per architecture."""

from __future__ import annotations

import platform
from collections.abc import Iterable

from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.syscalls import B32, B64

# The key every Tiercel audit rule carries: how we find our rules, and only ours.
RULE_KEY = "tiercel"

# What the state engine needs (process tree, fd table, cwd, credentials), like libsinsp's
# sinsp_state_sc_set. High-volume calls it can live without (read/write, fcntl) are left out.
STATE_SYSCALLS = frozenset({
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "exit_group",
    "open", "openat", "openat2", "creat", "open_by_handle_at", "close",
    "dup", "dup2", "dup3", "socket", "socketpair", "bind", "connect", "accept", "accept4", "listen",
    "pipe", "pipe2", "chdir", "fchdir", "chroot",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setsid", "setpgid",
    "capset", "memfd_create", "userfaultfd", "io_uring_setup",
})

# Event types that are not syscalls of the same name. (`exit` ends one thread; audit cannot say
# which one, so only `exit_group` makes a procexit.)
EVENT_TYPE_SYSCALLS: dict[str, tuple[str, ...]] = {
    "procexit": ("exit_group",),
    "sched_process_exit": ("exit_group",),
    "pread": ("pread64",),
    "pwrite": ("pwrite64",),
    "signaldeliver": (),
    "switch": (),
    "page_fault": (),
    "container": (),
    "procinfo": (),
    "drop": (),
    "infra": (),
    "notification": (),
    "pluginevent": (),
    "asyncevent": (),
}

# i386 multiplexers: a 32-bit process may reach socket calls through socketcall, IPC through ipc.
_SOCKET_CALLS = frozenset({"socket", "bind", "connect", "listen", "accept", "accept4", "getsockname",
                           "getpeername", "socketpair", "send", "sendto", "recv", "recvfrom",
                           "shutdown", "setsockopt", "getsockopt", "sendmsg", "recvmsg", "sendmmsg",
                           "recvmmsg"})
_IPC_CALLS = frozenset({"semop", "semget", "semctl", "msgsnd", "msgrcv", "msgget", "msgctl", "shmat",
                        "shmdt", "shmget", "shmctl", "semtimedop"})


# Reads and writes: audited only when a rule names them (Falco, too, leaves them out unless -A).
IO_SYSCALLS = frozenset({"read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
                         "sendto", "recvfrom", "sendmsg", "recvmsg"})


def syscalls_for(event_types: Iterable[str] | None, with_state: bool = True) -> set[str]:
    """Syscall names for a set of event-type names (None: every syscall Tiercel translates but
    the I/O ones)."""
    from tiercel.ingest.audit.translate import TRANSLATED_SYSCALLS

    names: set[str] = set(STATE_SYSCALLS) if with_state else set()
    if event_types is None:
        names |= set(TRANSLATED_SYSCALLS) - IO_SYSCALLS
        return names
    for et in event_types:
        et = et.strip().lower()
        if et in EVENT_TYPE_SYSCALLS:
            names.update(EVENT_TYPE_SYSCALLS[et])
        elif et in B64 or et in B32:
            names.add(et)
    return names


def native_arch() -> tuple[int, dict[str, int]] | None:
    m = platform.machine()
    if m == "x86_64":
        return nl.ARCH_X86_64, B64
    return None


def build_rules(names: Iterable[str], key: str = RULE_KEY, exclude_pids: Iterable[int] = ()) -> list[nl.AuditRule]:
    """One exit-filter rule per architecture (b64, and b32 for 32-bit processes on x86_64), not
    for the processes in `exclude_pids` (Tiercel's own: their syscalls would only feed back)."""
    wanted = set(names)
    rules: list[nl.AuditRule] = []
    arches: list[tuple[int, dict[str, int]]] = []
    native = native_arch()
    if native is None:
        raise RuntimeError(f"audit syscall tables for {platform.machine()} are not built in (x86_64 only)")
    arches.append(native)
    arches.append((nl.ARCH_I386, B32))
    for arch, table in arches:
        extra = set()
        if table is B32:
            if wanted & _SOCKET_CALLS:
                extra.add("socketcall")
            if wanted & _IPC_CALLS:
                extra.add("ipc")
        rule = nl.AuditRule(flags=nl.AUDIT_FILTER_EXIT, action=nl.AUDIT_ALWAYS)
        for n in sorted(wanted | extra):
            nr = table.get(n)
            if nr is not None:
                rule.add_syscall(nr)
        if not any(rule.mask):
            continue
        rule.fields = [nl.RuleField(nl.AUDIT_ARCH, nl.AUDIT_EQUAL, arch)]
        rule.fields += [nl.RuleField(nl.AUDIT_PID, nl.AUDIT_NOT_EQUAL, pid) for pid in sorted(set(exclude_pids))[:32]]
        rule.fields.append(nl.RuleField(nl.AUDIT_FILTERKEY, nl.AUDIT_EQUAL, text=key))
        rules.append(rule)
    return rules


def syscall_name(arch: int, nr: int) -> str | None:
    table = _BY_NR.get(arch)
    return table.get(nr) if table else None


_BY_NR: dict[int, dict[int, str]] = {
    nl.ARCH_X86_64: {v: k for k, v in B64.items()},
    nl.ARCH_I386: {v: k for k, v in B32.items()},
}
