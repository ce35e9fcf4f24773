"""The audit netlink wire format, sans-IO: netlink headers, `audit_status`, `audit_rule_data`.

Everything here turns bytes into values and back; sockets live in `tiercel.ingest.audit.client`.
Layouts are those of the kernel uapi (`linux/netlink.h`, `linux/audit.h`), host byte order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

NETLINK_AUDIT = 9

# netlink header flags and control types
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

# audit control messages
AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_LIST_RULES = 1013
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
AUDIT_SIGNAL_INFO = 1010

# audit record types Tiercel reads
AUDIT_SYSCALL = 1300
AUDIT_PATH = 1302
AUDIT_IPC = 1303
AUDIT_SOCKETCALL = 1304
AUDIT_CONFIG_CHANGE = 1305
AUDIT_SOCKADDR = 1306
AUDIT_CWD = 1307
AUDIT_EXECVE = 1309
AUDIT_FD_PAIR = 1317
AUDIT_OBJ_PID = 1318
AUDIT_EOE = 1320
AUDIT_BPRM_FCAPS = 1321
AUDIT_CAPSET = 1322
AUDIT_MMAP = 1323
AUDIT_PROCTITLE = 1327
AUDIT_OPENAT2 = 1337
AUDIT_KERNEL = 2000

RECORD_NAMES = {
    AUDIT_SYSCALL: "SYSCALL", AUDIT_PATH: "PATH", AUDIT_IPC: "IPC", AUDIT_SOCKETCALL: "SOCKETCALL",
    AUDIT_CONFIG_CHANGE: "CONFIG_CHANGE", AUDIT_SOCKADDR: "SOCKADDR", AUDIT_CWD: "CWD",
    AUDIT_EXECVE: "EXECVE", AUDIT_FD_PAIR: "FD_PAIR", AUDIT_OBJ_PID: "OBJ_PID", AUDIT_EOE: "EOE",
    AUDIT_BPRM_FCAPS: "BPRM_FCAPS", AUDIT_CAPSET: "CAPSET", AUDIT_MMAP: "MMAP",
    AUDIT_PROCTITLE: "PROCTITLE", AUDIT_OPENAT2: "OPENAT2", AUDIT_KERNEL: "KERNEL",
}

# audit_status.mask bits
STATUS_ENABLED = 0x01
STATUS_FAILURE = 0x02
STATUS_PID = 0x04
STATUS_RATE_LIMIT = 0x08
STATUS_BACKLOG_LIMIT = 0x10
STATUS_BACKLOG_WAIT_TIME = 0x20
STATUS_LOST = 0x40

# audit_rule_data
AUDIT_FILTER_EXIT = 0x04
AUDIT_ALWAYS = 2
AUDIT_NEVER = 0
AUDIT_BITMASK_SIZE = 64
AUDIT_MAX_FIELDS = 64
AUDIT_MAX_KEY_LEN = 256
AUDIT_KEY_SEPARATOR = "\x01"
# rule fields (subset)
AUDIT_PID = 0
AUDIT_UID = 1
AUDIT_ARCH = 11
AUDIT_SUCCESS = 104
AUDIT_PERM = 106
AUDIT_FILTERKEY = 210
STRING_FIELDS = frozenset({13, 14, 15, 16, 17, 18, 19, 105, 107, 112, 113, AUDIT_FILTERKEY})
# comparison operators (fieldflags)
AUDIT_EQUAL = 0x40000000
AUDIT_NOT_EQUAL = 0x30000000

# AUDIT_ARCH_* = EM_* | 64BIT | LE
ARCH_X86_64 = 0xC000003E
ARCH_I386 = 0x40000003
ARCH_AARCH64 = 0xC00000B7
ARCH_NAMES = {ARCH_X86_64: "b64", ARCH_I386: "b32", ARCH_AARCH64: "b64"}

_NLHDR = struct.Struct("=IHHII")
NLHDR_LEN = _NLHDR.size  # 16
_STATUS = struct.Struct("=11I")
_RULE_HEAD = struct.Struct("=3I")
RULE_FIXED_LEN = 4 * (3 + AUDIT_BITMASK_SIZE + 3 * AUDIT_MAX_FIELDS + 1)  # 1040


class NetlinkError(ValueError):
    """Bytes that are not a well-formed netlink/audit message."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def pack_message(msg_type: int, payload: bytes, seq: int, flags: int = NLM_F_REQUEST | NLM_F_ACK,
                 pid: int = 0) -> bytes:
    length = NLHDR_LEN + len(payload)
    return _NLHDR.pack(length, msg_type, flags, seq, pid) + payload + b"\0" * (_align(length) - length)


@dataclass(frozen=True)
class Message:
    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


def iter_messages(data: bytes) -> Iterator[Message]:
    """The netlink messages in one datagram. A truncated header raises NetlinkError.

    Audit records (types >= 1100) come one per datagram, and the kernel sets their `nlmsg_len`
    to the payload length without the header (audit_log_end); the datagram length is the truth.
    """
    off, n = 0, len(data)
    while off + NLHDR_LEN <= n:
        length, mtype, flags, seq, pid = _NLHDR.unpack_from(data, off)
        if mtype >= 1100:
            yield Message(mtype, flags, seq, pid, data[off + NLHDR_LEN:].rstrip(b"\0"))
            return
        if length < NLHDR_LEN:
            raise NetlinkError(f"netlink message length {length} shorter than its header")
        if off + length > n:
            raise NetlinkError(f"netlink message of {length} bytes in a datagram of {n - off}")
        yield Message(mtype, flags, seq, pid, data[off + NLHDR_LEN:off + length])
        off += _align(length)
    if off < n and off + NLHDR_LEN > n and off != n:
        raise NetlinkError(f"{n - off} trailing bytes after the last netlink message")


def parse_error(payload: bytes) -> int:
    """The errno of an NLMSG_ERROR (0 = ack). The kernel returns negative errnos; we give positive."""
    if len(payload) < 4:
        raise NetlinkError("short NLMSG_ERROR")
    (err,) = struct.unpack_from("=i", payload)
    return -err


@dataclass
class AuditStatus:
    """`struct audit_status`. `backlog_wait_time` is absent (0) on kernels older than 3.14."""

    mask: int = 0
    enabled: int = 0
    failure: int = 0
    pid: int = 0
    rate_limit: int = 0
    backlog_limit: int = 0
    lost: int = 0
    backlog: int = 0
    feature_bitmap: int = 0
    backlog_wait_time: int = 0
    backlog_wait_time_actual: int = 0

    def pack(self) -> bytes:
        return _STATUS.pack(self.mask, self.enabled, self.failure, self.pid, self.rate_limit,
                            self.backlog_limit, self.lost, self.backlog, self.feature_bitmap,
                            self.backlog_wait_time, self.backlog_wait_time_actual)

    @classmethod
    def unpack(cls, payload: bytes) -> AuditStatus:
        if len(payload) < 32:
            raise NetlinkError(f"audit_status of {len(payload)} bytes, expected at least 32")
        padded = payload[:_STATUS.size].ljust(_STATUS.size, b"\0")
        return cls(*_STATUS.unpack(padded))


@dataclass
class RuleField:
    field: int
    op: int
    value: int = 0
    text: str | None = None  # for string fields (key, watch path, exe, ...)


@dataclass
class AuditRule:
    """`struct audit_rule_data`: a filter list, an action, a syscall bitmap and fields."""

    flags: int = AUDIT_FILTER_EXIT
    action: int = AUDIT_ALWAYS
    mask: list[int] = field(default_factory=lambda: [0] * AUDIT_BITMASK_SIZE)
    fields: list[RuleField] = field(default_factory=list)

    # --- syscall bitmap ---------------------------------------------------------------------
    def add_syscall(self, nr: int) -> None:
        if not 0 <= nr < AUDIT_BITMASK_SIZE * 32:
            raise ValueError(f"syscall number {nr} out of the audit bitmap")
        self.mask[nr // 32] |= 1 << (nr % 32)

    def syscalls(self) -> list[int]:
        return [w * 32 + b for w, word in enumerate(self.mask) for b in range(32) if word >> b & 1]

    @property
    def all_syscalls(self) -> bool:
        return all(w == 0xFFFFFFFF for w in self.mask)

    # --- fields -----------------------------------------------------------------------------
    def keys(self) -> list[str]:
        out: list[str] = []
        for f in self.fields:
            if f.field == AUDIT_FILTERKEY and f.text:
                out.extend(k for k in f.text.split(AUDIT_KEY_SEPARATOR) if k)
        return out

    def arch(self) -> int | None:
        for f in self.fields:
            if f.field == AUDIT_ARCH:
                return f.value
        return None

    def pack(self) -> bytes:
        if len(self.fields) > AUDIT_MAX_FIELDS:
            raise ValueError("too many rule fields")
        fields = [0] * AUDIT_MAX_FIELDS
        values = [0] * AUDIT_MAX_FIELDS
        fflags = [0] * AUDIT_MAX_FIELDS
        buf = b""
        for i, f in enumerate(self.fields):
            fields[i], fflags[i] = f.field, f.op
            if f.field in STRING_FIELDS:
                raw = (f.text or "").encode()
                values[i] = len(raw)
                buf += raw
            else:
                values[i] = f.value & 0xFFFFFFFF
        return struct.pack(f"=3I{AUDIT_BITMASK_SIZE}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}II",
                           self.flags, self.action, len(self.fields), *self.mask, *fields, *values,
                           *fflags, len(buf)) + buf

    @classmethod
    def unpack(cls, payload: bytes) -> AuditRule:
        if len(payload) < RULE_FIXED_LEN:
            raise NetlinkError(f"audit_rule_data of {len(payload)} bytes, expected at least {RULE_FIXED_LEN}")
        words = struct.unpack_from(f"=3I{AUDIT_BITMASK_SIZE}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}I"
                                   f"{AUDIT_MAX_FIELDS}II", payload)
        flags, action, count = words[0:3]
        if count > AUDIT_MAX_FIELDS:
            raise NetlinkError(f"audit rule with {count} fields")
        mask = list(words[3:3 + AUDIT_BITMASK_SIZE])
        base = 3 + AUDIT_BITMASK_SIZE
        fields_ = words[base:base + AUDIT_MAX_FIELDS]
        values = words[base + AUDIT_MAX_FIELDS:base + 2 * AUDIT_MAX_FIELDS]
        fflags = words[base + 2 * AUDIT_MAX_FIELDS:base + 3 * AUDIT_MAX_FIELDS]
        buflen = words[-1]
        buf = payload[RULE_FIXED_LEN:RULE_FIXED_LEN + buflen]
        off = 0
        out: list[RuleField] = []
        for i in range(count):
            if fields_[i] in STRING_FIELDS:
                n = values[i]
                out.append(RuleField(fields_[i], fflags[i], n, buf[off:off + n].decode(errors="replace")))
                off += n
            else:
                out.append(RuleField(fields_[i], fflags[i], values[i]))
        return cls(flags=flags, action=action, mask=mask, fields=out)

    def signature(self) -> bytes:
        """Canonical bytes of the rule: what a listing compares (and DEL_RULE needs)."""
        return self.pack()

    def describe(self) -> str:
        """An auditctl-like one-liner, for logs and test failure messages."""
        lists = {0: "user", 1: "task", 4: "exit", 5: "exclude", 6: "filesystem", 7: "io_uring"}
        acts = {0: "never", 1: "possible", 2: "always"}
        parts = [f"-a {acts.get(self.action, self.action)},{lists.get(self.flags & 0xF, self.flags)}"]
        for f in self.fields:
            if f.field == AUDIT_ARCH:
                parts.append(f"-F arch={ARCH_NAMES.get(f.value, hex(f.value))}")
            elif f.field == AUDIT_FILTERKEY:
                parts.append(f"-F key={f.text}")
            else:
                parts.append(f"-F f{f.field}{'!=' if f.op == AUDIT_NOT_EQUAL else '='}{f.text or f.value}")
        if self.all_syscalls:
            parts.append("-S all")
        elif any(self.mask):
            parts.append("-S " + ",".join(str(n) for n in self.syscalls()))
        return " ".join(parts)
