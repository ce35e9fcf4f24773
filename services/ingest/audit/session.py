"""Taking over the kernel audit subsystem for a while, and giving it back exactly as found.

Before changing anything the prior configuration (status values we may change, and the rule
listing) is written to the state dir. A clean stop removes our rules (they carry the key
`RULE_KEY`), restores the status values and unregisters; a start that finds the file of a
killed predecessor does that cleanup first. Rules of others are never touched.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.client import AuditControl, AuditError, AuditReader
from tiercel.ingest.audit.syscall_set import RULE_KEY, build_rules, syscalls_for

log = logging.getLogger("tiercel.ingest.audit")

STATE_FILE = "audit-session.json"
# Status values Tiercel may change, and therefore restores.
RESTORED = ("enabled", "backlog_limit", "backlog_wait_time")


class AuditUnavailable(RuntimeError):
    """Audit cannot be used here; the message is one line for the user."""


def _comm(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    return pid > 0 and pathlib.Path(f"/proc/{pid}").exists()


def ours(rule: nl.AuditRule, key: str = RULE_KEY) -> bool:
    return key in rule.keys()


@dataclass
class AuditSession:
    """Owns the audit configuration between `start()` and `stop()`."""

    state_dir: pathlib.Path
    backlog_limit: int = 8192
    rcvbuf: int = 32 << 20
    key: str = RULE_KEY
    control: AuditControl | None = None
    reader: AuditReader | None = None
    prior: dict | None = None
    installed: list[nl.AuditRule] = field(default_factory=list)
    syscalls: set[str] = field(default_factory=set)
    recovered: bool = False
    exclude_pids: set[int] = field(default_factory=set)  # never audited (besides this process)

    @property
    def state_path(self) -> pathlib.Path:
        return self.state_dir / STATE_FILE

    # --- start ----------------------------------------------------------------------------
    def start(self, event_types: Iterable[str] | None = None) -> None:
        if os.geteuid() != 0:
            raise AuditUnavailable("the audit driver needs root (CAP_AUDIT_CONTROL and CAP_AUDIT_READ); "
                                   "run as root or set ingest.driver=proc_connector")
        try:
            self.control = AuditControl()
            status = self.control.get_status()
        except AuditError as e:
            raise AuditUnavailable(f"cannot talk to the kernel audit subsystem: {e.strerror or e}") from None
        # Whoever holds audit (auditd, another ingest) is never disturbed: check before any cleanup.
        if status.pid and _alive(status.pid) and status.pid != os.getpid():
            who = _comm(status.pid) or "another process"
            self.close()
            raise AuditUnavailable(f"kernel audit is taken by {who} (pid {status.pid}); Tiercel does not fight "
                                   f"it: stop it or set ingest.driver=proc_connector")
        self.recover(status)
        status = self.control.get_status()
        if status.enabled == 2:
            self.close()
            raise AuditUnavailable("the audit configuration is locked (enabled=2, auditctl -e 2); "
                                   "rules cannot be changed until reboot")
        rules_before = self.control.list_rules()
        self.prior = {
            "pid": os.getpid(),
            "time": time.time(),
            "key": self.key,
            "status": {k: getattr(status, k) for k in RESTORED},
            "rules_before": [r.signature().hex() for r in rules_before],
        }
        self._write_state()
        self.reader = AuditReader(self.rcvbuf)
        try:
            self.reader.register()
        except AuditError as e:
            self.stop()
            if e.errno == 17:  # EEXIST: a healthy daemon is registered
                raise AuditUnavailable("kernel audit is taken by another audit daemon; Tiercel does not "
                                       "fight it: stop it or set ingest.driver=proc_connector") from None
            raise AuditUnavailable(f"cannot register as the audit reader: {e.strerror or e}") from None
        try:
            # backlog_wait_time 0: the kernel drops (and counts) instead of stalling audited processes
            self.control.set_status(enabled=1, backlog_limit=self.backlog_limit, backlog_wait_time=0)
        except AuditError as e:
            self.stop()
            raise AuditUnavailable(f"cannot enable kernel audit: {e.strerror or e}") from None
        self.set_event_types(event_types)

    def recover(self, status: nl.AuditStatus | None = None) -> bool:
        """Clean up after a predecessor that was killed: its rules, its status changes."""
        assert self.control is not None
        try:
            saved = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as e:
            log.warning("audit: ignoring unreadable %s: %s", self.state_path, e)
            saved = {}
        pid = int(saved.get("pid", 0) or 0)
        status = status or self.control.get_status()
        if pid and pid != os.getpid() and _alive(pid) and status.pid == pid:
            raise AuditUnavailable(f"another tiercel ingest (pid {pid}) is running and holds kernel audit")
        key = saved.get("key", self.key)
        removed = self._remove_rules(key)
        values = {k: int(v) for k, v in dict(saved.get("status", {})).items() if k in RESTORED}
        if values:
            self._restore_status(values)
        self.state_path.unlink(missing_ok=True)
        self.recovered = True
        log.warning("audit: recovered after an unclean stop of pid %s: removed %d stale Tiercel rule(s), "
                    "restored %s", pid or "?", removed, ", ".join(f"{k}={v}" for k, v in values.items()) or "nothing")
        return True

    def _write_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.prior, indent=1))
        os.replace(tmp, self.state_path)

    # --- rules ----------------------------------------------------------------------------
    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        """Audit exactly the syscalls these event types (plus the state engine) need."""
        self.set_syscalls(syscalls_for(event_types))

    def set_syscalls(self, names: set[str]) -> None:
        assert self.control is not None
        new = build_rules(names, self.key, {os.getpid(), *self.exclude_pids})
        if self.installed and [r.signature() for r in new] == [r.signature() for r in self.installed]:
            return
        # add the new rules before removing the old ones, so no window without rules
        old = self._our_rules()
        added: list[nl.AuditRule] = []
        for r in new:
            try:
                self.control.add_rule(r)
                added.append(r)
            except AuditError as e:
                if e.errno != 17:  # EEXIST: identical rule already there
                    raise AuditUnavailable(f"cannot add audit rule {r.describe()}: {e.strerror or e}") from None
        new_sigs = {r.signature() for r in new}
        for r in old:
            if r.signature() not in new_sigs:
                self.control.delete_rule(r)
        self.installed = new
        self.syscalls = set(names)
        log.info("audit: auditing %d syscalls (%d rules, key %s)", len(names), len(new), self.key)

    def _our_rules(self, key: str | None = None) -> list[nl.AuditRule]:
        assert self.control is not None
        return [r for r in self.control.list_rules() if ours(r, key or self.key)]

    def _remove_rules(self, key: str) -> int:
        n = 0
        for r in self._our_rules(key):
            try:
                self.control.delete_rule(r)
                n += 1
            except AuditError as e:
                log.warning("audit: could not delete rule %s: %s", r.describe(), e)
        return n

    def _restore_status(self, values: dict[str, int]) -> None:
        assert self.control is not None
        try:
            self.control.set_status(**values)
        except AuditError as e:
            log.warning("audit: could not restore %s: %s", values, e)

    # --- counters -------------------------------------------------------------------------
    def status(self) -> nl.AuditStatus:
        assert self.control is not None
        return self.control.get_status()

    # --- stop -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Remove our rules, restore the status values, unregister. Safe to call twice."""
        if self.control is None:
            return
        try:
            self._remove_rules(self.key)
            if self.prior:
                self._restore_status(dict(self.prior["status"]))
            if self.reader is not None and self.reader.registered:
                try:
                    self.control.set_status(pid=0)
                except AuditError as e:
                    log.warning("audit: could not unregister: %s", e)
            if self.prior:
                after = [r.signature().hex() for r in self.control.list_rules()]
                if after != self.prior["rules_before"]:
                    log.warning("audit: the rule list differs from the one found at start "
                                "(%d rules then, %d now); rules of others were left as they are",
                                len(self.prior["rules_before"]), len(after))
            self.state_path.unlink(missing_ok=True)
        finally:
            self.close()

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.control is not None:
            self.control.close()
            self.control = None
