"""The project layout: one import root (`tiercel`), every package installed, importable anywhere."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.conftest import ROOT


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"tiercel"}
    for init in (ROOT / "services").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT / "services")
        if rel.parts:
            found.add("tiercel." + ".".join(rel.parts))
    assert found == listed, f"pyproject packages differ from services/: missing {found - listed}, extra {listed - found}"


def test_import_root_works_from_any_directory(tmp_path):
    code = "import tiercel, tiercel.common.bus, tiercel.pb.falco.outputs_pb2; print(tiercel.__version__)"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().count(".") == 2


def test_generated_code_does_not_take_the_falco_name(tmp_path):
    """Falco's client-py owns the top-level `falco`; ours lives under tiercel.pb."""
    code = "import importlib.util, tiercel.pb.falco.outputs_pb2; print(importlib.util.find_spec('falco'))"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "None"


def test_architecture_doc_names_every_module():
    """docs/architecture.md must stay true: each module is named there, itself or by its package's
    row (generated code, package markers and `__main__` aside), and it names no module that is gone."""
    import re

    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`(tiercel(?:\.[a-z_0-9]+)+)`", doc))
    modules = set()
    for py in (ROOT / "services").rglob("*.py"):
        parts = py.relative_to(ROOT / "services").with_suffix("").parts
        if parts[0] == "pb" or parts[-1] in ("__init__", "__main__") or len(parts) < 2:
            continue
        modules.add("tiercel." + ".".join(parts))
    packages = {"tiercel." + ".".join(p.parent.relative_to(ROOT / "services").parts)
                for p in (ROOT / "services").rglob("__init__.py")}
    unnamed = sorted(m for m in modules if not any(m == n or m.startswith(n + ".") for n in named))
    assert not unnamed, f"modules missing from docs/architecture.md: {unnamed}"
    gone = sorted(n for n in named if n not in modules and n not in packages)
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
