"""Coverage-guided fuzzing of the fuzz suite's targets with atheris (libFuzzer for Python).

Optional: `pip install -e '.[fuzz]'` (atheris ships manylinux wheels; it is not needed by
`make test-fuzz`, which drives the same targets with hypothesis). Where it helps: the byte-level
parsers (scap, audit, bus_events, inputs), whose branches random mutation reaches faster when it
is guided by coverage.

    .venv/bin/python tools/fuzz_atheris.py scap -max_total_time=300
    .venv/bin/python tools/fuzz_atheris.py list

The targets' seeds start the corpus (in a temporary directory unless `-corpus DIR` is given);
a crash or hang writes the input to `crash-*` / `timeout-*` in the current directory, libFuzzer's
way. Replay one with `tools/fuzz_atheris.py TARGET crash-...`.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    if len(argv) < 2 or argv[1] in ("list", "-h", "--help"):
        from tests import fuzzkit

        for name, t in sorted(fuzzkit.TARGETS.items()):
            print(f"{name:12} {t.doc.splitlines()[0] if t.doc else ''}")
        return 0
    name, rest = argv[1], argv[2:]
    with atheris.instrument_imports(include=["tiercel"]):
        from tests import fuzzkit

        fuzzkit.warm()
        for t in fuzzkit.TARGETS.values():  # the targets import what they use lazily: do it here
            for seed in t.seeds()[:1]:
                try:
                    t.run(t.from_bytes(seed))
                except Exception:
                    pass
    t = fuzzkit.TARGETS.get(name)
    if t is None:
        print(f"unknown target {name!r}; targets: {', '.join(sorted(fuzzkit.TARGETS))}", file=sys.stderr)
        return 2
    corpus = None
    if "-corpus" in rest:
        i = rest.index("-corpus")
        corpus = pathlib.Path(rest[i + 1])
        del rest[i:i + 2]
    if not any(not a.startswith("-") for a in rest):  # no corpus or crash file given: seed one
        corpus = corpus or pathlib.Path(tempfile.mkdtemp(prefix=f"tiercel-fuzz-{name}-"))
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(t.seeds()):
            (corpus / f"seed-{i}").write_bytes(seed)
        rest.append(str(corpus))

    def one(data: bytes) -> None:
        value = t.from_bytes(data)
        try:
            with fuzzkit.time_limit():
                t.run(value)
        except t.allowed:
            pass

    atheris.Setup([argv[0], f"-timeout={int(fuzzkit.INPUT_TIMEOUT_S) + 5}", "-rss_limit_mb=2048", *rest], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
