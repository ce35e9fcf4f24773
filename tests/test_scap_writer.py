"""The .scap writer: what we write, sysdig reads back exactly as it reads the original."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from tiercel.common.event import Event
from tiercel.ingest.scap.reader import read_scap
from tiercel.ingest.scap.writer import write_scap

CAPTURES = ["cat_write.scap", "empty.scap", "open-multiple-files.scap", "libs/curl_google.scap",
            "libs/test_ipv6_client.scap"]

# Every field sysdig 0.29 fills from the metadata blocks and events, so the comparison covers
# the process list, fd lists and user list as well as the events.
FIELDS = ("evt.num evt.time evt.cpu evt.type evt.dir evt.res evt.rawres evt.args proc.pid thread.tid "
          "proc.ppid proc.name proc.pname proc.exe proc.exepath proc.cmdline proc.args proc.cwd "
          "proc.aname[2] proc.env thread.cgroups proc.sid proc.vpid thread.vtid proc.fdlimit "
          "proc.vmsize user.uid user.name user.homedir user.shell group.gid group.name fd.num fd.name "
          "fd.typechar fd.type fd.directory fd.filename fd.sip fd.sport fd.cip fd.cport fd.l4proto "
          "container.id").split()
FORMAT = "*" + "|".join("%" + f for f in FIELDS)


def _sysdig(path) -> str:
    p = subprocess.run(["sysdig", "-r", str(path), "-p", FORMAT], capture_output=True, text=True,
                       timeout=60, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("name", CAPTURES)
def test_reader_writer_round_trip_is_lossless(conformance_dir, name):
    src = conformance_dir / "traces" / name
    first = list(read_scap(src))
    buf = io.BytesIO()
    write_scap(buf, first)
    again = list(read_scap(buf.getvalue()))
    a = [(e.num, e.ts, e.tid, e.cpu, e.code, e.params) for e in first if isinstance(e, Event)]
    b = [(e.num, e.ts, e.tid, e.cpu, e.code, e.params) for e in again if isinstance(e, Event)]
    assert a == b


@pytest.mark.sysdig
@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed")
@pytest.mark.parametrize("name", CAPTURES)
def test_sysdig_reads_our_capture_identically(conformance_dir, tmp_path, name):
    src = conformance_dir / "traces" / name
    out = tmp_path / "rt.scap"
    with open(out, "wb") as f:
        write_scap(f, read_scap(src), compress=True)
    assert _sysdig(out) == _sysdig(src)


@pytest.mark.sysdig
@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed")
def test_live_header_from_the_state_engine(tmp_path):
    """A capture whose process list, fd lists and users come from the state engine (seeded from
    this machine's /proc): sysdig resolves our process, its user and its open fds from them."""
    import os

    from tiercel.common import eventtable as et
    from tiercel.ingest.scap.writer import ScapWriter
    from tiercel.ingest.state import StateEngine

    engine = StateEngine()
    engine.seed_from_proc()
    me = engine.threads[os.getpid()]
    fd = next(n for n, f in sorted(me.fds.items()) if f.type == "file" and f.name.startswith("/"))
    out = tmp_path / "live.scap"
    with open(out, "wb") as f:
        w = ScapWriter(f)
        w.write_header_from(engine)
        read_x = et.PPME["PPME_SYSCALL_READ_X"]
        w.write_event(Event(1, 1_700_000_000_000_000_000, os.getpid(), read_x - 1, [fd, 10]))
        w.write_event(Event(2, 1_700_000_000_000_000_100, os.getpid(), read_x, [0, b""]))
        w.close()
    p = subprocess.run(["sysdig", "-r", str(out), "-p", "%proc.name|%proc.exepath|%user.name|%fd.num|%fd.name"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = p.stdout.splitlines()[0].split("|")
    assert line == [me.comm, me.exepath, me.user, str(fd), me.fds[fd].name], p.stdout


@pytest.mark.sysdig
@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed")
def test_strings_past_libscap_limits_are_cut(tmp_path):
    """A live process with a 25 KB command line (CI met one) once made a capture libscap refuses
    ("invalid argslen"): the writer cuts args/env to 4096 bytes and paths to 1024."""
    from tiercel.common import eventtable as et
    from tiercel.common.event import ThreadInfo
    from tiercel.ingest.scap.writer import ScapWriter

    t = ThreadInfo(4242, comm="longargs", exe="/usr/bin/longargs", exepath="/usr/bin/longargs",
                   args=["x" * 1000] * 25, env=["K=" + "v" * 9000], cwd="/" + "d" * 2000)
    out = tmp_path / "long.scap"
    with open(out, "wb") as f:
        w = ScapWriter(f)
        w.write_header(threads=[t])
        read_x = et.PPME["PPME_SYSCALL_READ_X"]
        w.write_event(Event(1, 1_700_000_000_000_000_000, 4242, read_x - 1, [0, 10]))
        w.write_event(Event(2, 1_700_000_000_000_000_100, 4242, read_x, [0, b""]))
        w.close()
    p = subprocess.run(["sysdig", "-r", str(out), "-p", "%proc.name|%proc.args|%proc.cwd"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    name, args, cwd = p.stdout.splitlines()[0].split("|")
    assert name == "longargs"
    assert 3000 < len(args) < 4096
    assert cwd == "/PATH_TOO_LONG/"  # sysdig's own answer for a 1024-byte cwd: read, not refused
    items = list(read_scap(out.read_bytes()))
    thread = next(x for it in items for x in getattr(it, "threads", []) if x.tid == 4242)
    assert len("\0".join(thread.args)) < 4096 and len(thread.env[0]) < 4096
    assert thread.cwd.startswith("/ddd") and len(thread.cwd) == 1024


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_address_parameters_are_text_both_ways(byteorder):
    """PT_IPV4ADDR/PT_IPV6ADDR have a fixed size but are addresses: the reader gives their text
    form (as sysdig prints it), and the writer turns the text back into the same bytes."""
    from tiercel.common import eventtable as et
    from tiercel.ingest.scap.writer import ScapWriter

    v4 = et.PPME["PPME_ITER_TASK_FILE_SOCKET_INET_E"]
    v6 = et.PPME["PPME_ITER_TASK_FILE_SOCKET_INET6_E"]
    buf = io.BytesIO()
    w = ScapWriter(buf, byteorder=byteorder)
    w.write_event(Event(1, 1_700_000_000_000_000_000, 7, v4, [3, 1, 6, "10.0.0.1", 4242, "192.168.1.9", 443, 99]))
    w.write_event(Event(2, 1_700_000_000_000_000_001, 7, v6, [4, 1, 6, "::1", 4242, "2001:db8::7", 443, 98]))
    w.close()
    evs = [x for x in read_scap(buf.getvalue()) if isinstance(x, Event)]
    assert [e.params[3] for e in evs] == ["10.0.0.1", "::1"]
    assert [e.params[5] for e in evs] == ["192.168.1.9", "2001:db8::7"]
