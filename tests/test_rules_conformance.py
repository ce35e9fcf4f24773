"""Falco's conformance suite (../shared/conformance) against the `tiercel` command, and validation of
the upstream rules files. Skips cleanly when ../shared is absent (a user's clone).

The cases run through `run.py`'s own checks (imported, not copied), several at a time: each case
is one or two `tiercel` processes, so threads overlap their start-up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "conformance"
TIERCEL = str(Path(sys.executable).parent / "tiercel")
WORKERS = max(2, min(6, (os.cpu_count() or 2) * 2))

pytestmark = pytest.mark.skipif(not (SHARED / "run.py").exists(), reason="../shared/conformance is absent")


def _runner():
    spec = importlib.util.spec_from_file_location("conformance_run", SHARED / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cases() -> list[dict]:
    return json.loads((SHARED / "cases.json").read_text())


def _check(run, case: dict, root: Path) -> list[str]:
    check = run.check_validate if case["kind"] == "validate" else run.check_detect
    return check(case, [TIERCEL], str(root), 120)


def _rules_dir_is_a_tree_listing() -> bool:
    """The corpus holds `rules/rules_dir` as the text of `git show <tree>` (the directory's
    listing), not as the directory: no rules engine can load the case as given."""
    p = SHARED / "rules" / "rules_dir"
    return p.is_file() and p.read_text().startswith("tree ")


def test_conformance_all_cases():
    run = _runner()
    cases = _cases()
    assert len(cases) == 104
    defective = {"rules_directory"} if _rules_dir_is_a_tree_listing() else set()
    with ThreadPoolExecutor(WORKERS) as pool:
        problems = list(pool.map(lambda c: _check(run, c, SHARED), cases))
    failed = {c["name"]: p for c, p in zip(cases, problems, strict=True) if p}
    # A defective case fails as Falco itself would fail it (the listing is a YAML scalar): exit 1.
    for name in defective:
        assert failed.pop(name, None), f"{name} passes although its input is defective: drop it from the list"
    assert not failed, json.dumps(failed, indent=1)[:6000]


def test_rules_directory_case_with_the_directory_it_names(tmp_path):
    """`rules_directory` as Falco's suite ran it: a directory whose .yaml files load in name
    order (the listing names 000-single_rule.yaml and 001-double_rule.yaml)."""
    run = _runner()
    case = next(c for c in _cases() if c["name"] == "rules_directory")
    root = tmp_path / "conformance"
    (root / "rules" / "rules_dir").mkdir(parents=True)
    (root / "traces").mkdir()
    os.symlink(SHARED / case["trace"], root / case["trace"])
    shutil.copy(SHARED / "rules" / "single_rule.yaml", root / "rules" / "rules_dir" / "000-single_rule.yaml")
    shutil.copy(SHARED / "rules" / "double_rule.yaml", root / "rules" / "rules_dir" / "001-double_rule.yaml")
    (root / "rules" / "rules_dir" / "README.txt").write_text("not a rules file: skipped\n")
    assert _check(run, case, root) == []


def test_upstream_rules_files_validate_without_errors():
    files = sorted(str(f) for f in (SHARED / "rules" / "upstream").glob("*.yaml"))
    assert len(files) >= 3

    def validate(f: str) -> tuple[str, int, list]:
        p = subprocess.run([TIERCEL, "rules", "validate", f, "--json"], capture_output=True, text=True, timeout=120)
        doc = json.loads(p.stdout)
        return f, p.returncode, [e for r in doc["falco_load_results"] for e in r["errors"]]

    with ThreadPoolExecutor(WORKERS) as pool:  # each on its own, as `falco -V file`
        for f, code, errors in pool.map(validate, files):
            assert code == 0 and not errors, (f, errors)


def test_validate_text_and_exit_status(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("- list: l\n  items: [a]\n- foo: 1\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- list:\n  items: [a]\n")
    p = subprocess.run([TIERCEL, "rules", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout.startswith(f"{bad}: Invalid\n1 Errors:\nIn rules content: ({bad}:0:0)\n    list: ({bad}:0:2)\n")
    assert "LOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file): Mapping for key 'list' " \
           "is empty" in p.stdout
    p = subprocess.run([TIERCEL, "rules", "validate", str(tmp_path / "missing.yaml"), "--json"],
                       capture_output=True, text=True, timeout=60)
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and doc["falco_load_results"][0]["errors"][0]["code"] == "LOAD_ERR_FILE_READ"
    p = subprocess.run([TIERCEL, "rules", "validate", str(bad), str(good), "--json"], capture_output=True, text=True,
                       timeout=60)
    doc = json.loads(p.stdout)["falco_load_results"]
    assert [r["successful"] for r in doc] == [False, True]
    assert [w["code"] for w in doc[1]["warnings"]] == ["LOAD_UNKNOWN_ITEM", "LOAD_UNUSED_LIST"]
