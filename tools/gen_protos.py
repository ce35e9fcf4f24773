"""Regenerate services/pb from protos/ (`make protos`).

protoc writes `from falco import x_pb2`; those imports are rewritten to `tiercel.pb.falco` so the
generated modules never take the top-level name `falco`, which Falco's client-py also uses.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
IMPORT = re.compile(r"^from falco import (\w+) as", re.M)


def generate(out: pathlib.Path) -> None:
    """Generate the package tree for tiercel.pb into `out`."""
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={tmp}",
               f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *files]
        subprocess.run(cmd, check=True, cwd=PROTOS)
        gen = pathlib.Path(tmp) / "falco"
        target = out / "falco"
        target.mkdir(parents=True, exist_ok=True)
        (target / "__init__.py").write_text('"""Generated from protos/falco (package names falco.*)."""\n')
        for f in sorted(gen.iterdir()):
            text = IMPORT.sub(r"from tiercel.pb.falco import \1 as", f.read_text())
            (target / f.name).write_text(text)


def main() -> None:
    out = ROOT / "services" / "pb"
    shutil.rmtree(out / "falco", ignore_errors=True)
    generate(out)


if __name__ == "__main__":
    main()
