"""`tiercel replay` end to end on a capture written here (scap writer): Falco's text and JSON alert
lines byte for byte (spec §3.3-3.4), the output options, -A, rule_matching, the priority threshold,
-D/-t/-T, and the summary on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiercel.common import eventtable as et
from tiercel.common.event import Event, FdInfo, ThreadInfo
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.scap.writer import write_scap

TIERCEL = str(Path(sys.executable).parent / "tiercel")
T0 = 1_718_000_000_123_456_789  # 2024-06-10T06:13:20.123456789Z

RULES = """
- rule: shadow
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: >
    shadow opened (user=%user.name proc=%proc.name file=%fd.name parent=%proc.pname gp=%proc.aname[2]
    far=%proc.aname[5] fd=%fd.num upper=%toupper(proc.name) name=%proc.name)
  priority: WARNING
  tags: [b, a, b]
- rule: any open
  desc: d
  condition: evt.type = openat
  output: open %fd.name
  priority: DEBUG
- rule: reads
  desc: d
  condition: evt.type = read and fd.num >= 0
  output: read %fd.name res=%evt.res
  priority: INFO
  tags: [io]
"""


def _ev(num: int, thread: int, enum: str, /, **kw) -> Event:
    code = et.PPME[enum]
    params = [kw.pop(p.name, None) for p in et.info(code).params]
    assert not kw
    while params and params[-1] is None:
        params.pop()
    return Event(num, T0 + (num - 1) * 1_000_000_000, thread, code, params)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    items = [
        B.UserList([B.User(0, 0, "root", "/root", "/bin/bash"), B.User(1000, 1000, "alice", "/home/alice", "")],
                   [B.Group(0, "root"), B.Group(1000, "alice")]),
        B.ProcessList([
            ThreadInfo(1, 1, 0, comm="systemd", exe="/sbin/init", exepath="/sbin/init", cwd="/", uid=0, gid=0),
            ThreadInfo(100, 100, 1, comm="bash", exe="bash", exepath="/usr/bin/bash", cwd="/home/alice/", uid=1000,
                       gid=1000),
        ]),
        B.FdList(100, [FdInfo(0, "file", "/dev/pts/0")]),
        _ev(1, 200, "PPME_SYSCALL_CLONE_20_X", res=0, exe="bash", args=b"", tid=200, pid=200, ptid=100,
            cwd="/home/alice/", comm="bash", flags=0, uid=1000, gid=1000, vtid=200, vpid=200),
        _ev(2, 200, "PPME_SYSCALL_EXECVE_19_X", res=0, exe="cat", args=b"/etc/shadow\0", tid=200, pid=200,
            ptid=100, cwd="/home/alice/", comm="cat", trusted_exepath="/usr/bin/cat", uid=1000, gid=1000),
        _ev(3, 200, "PPME_SYSCALL_OPENAT_2_X", fd=3, dirfd=-100, name="/etc/shadow", flags=1, mode=0, dev=0, ino=5),
        _ev(4, 200, "PPME_SYSCALL_READ_X", res=13, data=b"root:*:19000:", fd=3, size=4096),
        _ev(5, 200, "PPME_SYSCALL_OPENAT_2_X", fd=4, dirfd=-100, name="/tmp/x", flags=1, mode=0, dev=0, ino=6),
        _ev(6, 200, "PPME_SYSCALL_CLOSE_X", res=0, fd=3),
    ]
    cap = d / "t.scap"
    with open(cap, "wb") as f:
        write_scap(f, items)
    rules = d / "r.yaml"
    rules.write_text(RULES)
    return cap, rules


def replay(files, *args: str) -> subprocess.CompletedProcess:
    cap, rules = files
    env = dict(os.environ, TZ="UTC", FALCO_HOSTNAME="node-1")
    return subprocess.run([TIERCEL, "replay", str(cap), "-r", str(rules), *args], capture_output=True, text=True,
                          timeout=60, env=env)


SHADOW_TEXT = ("06:13:22.123456789: Warning shadow opened (user=alice proc=cat file=/etc/shadow parent=bash "
               "gp=systemd far=<NA> fd=3 upper=CAT name=cat)")
OPEN_TMP_TEXT = "06:13:24.123456789: Debug open /tmp/x"
READ_TEXT = "06:13:23.123456789: Informational read /etc/shadow res=SUCCESS"


def test_text_alerts_and_summary(files):
    p = replay(files)
    assert p.returncode == 0, p.stderr
    assert p.stdout == SHADOW_TEXT + "\n" + OPEN_TMP_TEXT + "\n"
    summary = p.stderr[p.stderr.index("Events detected"):]
    assert summary == ("Events detected: 2\nRule counts by severity:\n   WARNING: 1\n   DEBUG: 1\n"
                       "Triggered rules by rule name:\n   shadow: 1\n   any open: 1\n")
    assert p.stderr.startswith("Events read: 6 in ")


def test_json_alert_byte_for_byte(files):
    p = replay(files, "-o", "json_output=true", "-o", "priority=warning")
    assert p.returncode == 0, p.stderr
    assert p.stdout == (
        '{"hostname":"node-1","output":"' + SHADOW_TEXT + '","output_fields":{"evt.time":1718000002123456789,'
        '"fd.name":"/etc/shadow","fd.num":3,"proc.aname[2]":"systemd","proc.aname[5]":null,"proc.name":"cat",'
        '"proc.pname":"bash","user.name":"alice"},"priority":"Warning","rule":"shadow","source":"syscall",'
        '"tags":["a","b"],"time":"2024-06-10T06:13:22.123456789Z"}\n')


def test_json_output_options(files):
    p = replay(files, "-o", "json_output=true", "-o", "json_include_output_property=false",
               "-o", "json_include_tags_property=false", "-o", "time_format_iso_8601=true")
    alerts = [json.loads(line) for line in p.stdout.splitlines()]
    assert [sorted(a) for a in alerts] == [["hostname", "output_fields", "priority", "rule", "source", "time"]] * 2
    assert alerts[0]["output_fields"]["evt.time.iso8601"] == 1718000002123456789
    assert "evt.time" not in alerts[0]["output_fields"]
    p = replay(files, "-o", "time_format_iso_8601=true", "-o", "priority=warning")
    assert p.stdout == SHADOW_TEXT.replace("06:13:22.123456789", "2024-06-10T06:13:22.123456789+0000") + "\n"


def test_all_events_and_rule_matching(files):
    p = replay(files, "-A")
    assert p.stdout.splitlines() == [SHADOW_TEXT, READ_TEXT, OPEN_TMP_TEXT]
    p = replay(files, "-o", "rule_matching=all")
    assert p.stdout.splitlines() == [SHADOW_TEXT, "06:13:22.123456789: Debug open /etc/shadow", OPEN_TMP_TEXT]
    assert "   shadow: 1\n   any open: 2\n" in p.stderr


def test_priority_threshold_and_selection(files):
    assert replay(files, "-o", "priority=error").stdout == ""
    assert replay(files, "-A", "-o", "priority=info").stdout.splitlines() == [SHADOW_TEXT, READ_TEXT]
    assert replay(files, "-D", "hado").stdout.splitlines() == ["06:13:22.123456789: Debug open /etc/shadow",
                                                               OPEN_TMP_TEXT]
    assert replay(files, "-A", "-t", "io").stdout.splitlines() == [READ_TEXT]
    assert replay(files, "-T", "a", "-T", "io", "-A").stdout.splitlines() == [
        "06:13:22.123456789: Debug open /etc/shadow", OPEN_TMP_TEXT]
    p = replay(files, "-t", "a", "-T", "io")
    assert p.returncode == 1 and p.stdout == ""
    assert "You can not specify both disabled (-D/-T) and enabled (-t) rules" in p.stderr


def test_unreadable_capture_and_bad_option(files, tmp_path):
    bad = tmp_path / "x.scap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 64)
    p = subprocess.run([TIERCEL, "replay", str(bad), "-r", str(files[1])], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "Runtime error" in p.stderr
    p = replay(files, "-o", "priority=loud")
    assert p.returncode != 0 and "Traceback" not in p.stderr
