#!/usr/bin/env python3
"""Generate `services/common/eventtable.json` from `../shared/reference/scap-event-table.json`.

The reference is a research file beside the checkout; the product must not need it at run time, so
the facts it uses (event schema, flag tables, syscall ids, errno and signal names) are copied here
into a compact, committed data file. `tests/test_eventtable.py` fails when the committed file is
stale with respect to the reference.

Usage: python tools/gen_event_table.py [--check] [--reference PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "scap-event-table.json"
OUT = ROOT / "services" / "common" / "eventtable.json"

_DIR = {"enter": ">", "exit": "<", "none": ""}


def build(ref: dict) -> dict:
    """The compact table: everything the product reads at run time, nothing else."""
    flag_values = ref["enums"]["ppm_event_flags"]
    events = []
    for e in ref["events"]:
        params = []
        for p in e["params"]:
            row = [p["name"], p["type"], p["fmt"]]
            extra = {}
            if "flags_table" in p:
                extra["table"] = p["flags_table"]
            if "dyn_table" in p:
                extra["dyn"] = p["dyn_table"]
            if "dirfd_param" in p:
                extra["dirfd"] = p["dirfd_param"]
            if extra:
                row.append(extra)
            params.append(row)
        flags = 0
        for f in e["flags"]:
            flags |= flag_values[f]
        ev = {
            "code": e["code"],
            "enum": e["enum"],
            "name": e["name"],
            "dir": _DIR[e["dir"]],
            "category": e["category_value"],
            "flags": flags,
            "params": params,
        }
        if e.get("paired_with") is not None:
            ev["paired"] = e["paired_with"]
        if e.get("historical_nparams"):
            ev["hist_nparams"] = e["historical_nparams"]
        if "fd_param_index" in e:
            ev["fd_param"] = e["fd_param_index"]
        if e.get("large_payload"):
            ev["large"] = True
        events.append(ev)
    assert [e["code"] for e in events] == list(range(len(events)))
    return {
        "generated_by": "tools/gen_event_table.py",
        "source": {"repository": ref["source"]["repository"], "commit": ref["source"]["commit"],
                   "commit_date": ref["source"]["commit_date"]},
        "event_max": ref["event_max"],
        "enums": ref["enums"],
        "param_types": {k: [v["value"], v["kind"], v.get("size"), v.get("struct")]
                        for k, v in ref["param_types"].items()},
        "block_types": {v["name"]: v["value"] for v in ref["block_types"].values()},
        "events": events,
        "flags_tables": {k: {"kind": v["kind"], "values": v["values"]}
                         for k, v in ref["flags_tables"].items()},
        "dynamic_param_tables": {k: [[r["type"], r["fmt"]] for r in sorted(v, key=lambda r: r["index"])]
                                 for k, v in ref["dynamic_param_tables"].items()},
        "syscall_ids": {int(k): v for k, v in ref["syscall_ids"].items()},
        "errno_names": {int(k): v for k, v in ref["errno_names"].items()},
        "signal_names": {int(k): v for k, v in ref["signal_names"].items()},
    }


def render(table: dict) -> str:
    """JSON with one event per line: small, and reviewable in a diff."""
    lines = ["{"]
    keys = list(table)
    for i, k in enumerate(keys):
        sep = "," if i < len(keys) - 1 else ""
        v = table[k]
        if k == "events":
            lines.append('  "events": [')
            for j, e in enumerate(v):
                lines.append("    " + json.dumps(e, separators=(",", ":")) + ("," if j < len(v) - 1 else ""))
            lines.append("  ]" + sep)
        elif k == "flags_tables":
            lines.append('  "flags_tables": {')
            items = list(v.items())
            for j, (name, t) in enumerate(items):
                lines.append(f"    {json.dumps(name)}: " + json.dumps(t, separators=(",", ":"))
                             + ("," if j < len(items) - 1 else ""))
            lines.append("  }" + sep)
        else:
            lines.append(f"  {json.dumps(k)}: " + json.dumps(v, separators=(",", ":")) + sep)
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(reference: pathlib.Path = REFERENCE) -> str:
    return render(build(json.loads(reference.read_text())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=pathlib.Path, default=REFERENCE)
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    a = ap.parse_args(argv)
    if not a.reference.is_file():
        print(f"reference not found: {a.reference}", file=sys.stderr)
        return 2
    text = generate(a.reference)
    if a.check:
        current = a.out.read_text() if a.out.is_file() else ""
        if current != text:
            print(f"{a.out} is stale: run tools/gen_event_table.py", file=sys.stderr)
            return 1
        return 0
    a.out.write_text(text)
    print(f"wrote {a.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
