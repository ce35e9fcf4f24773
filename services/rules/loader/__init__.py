"""The rules-file loader, as Falco's pipeline: reader (YAML -> items) -> collector (define / append /
override across files) -> compiler (lists, macros, rules -> compiled rules).

`Loader.load(name, content)` reads one file into the shared collector and recompiles everything
collected so far, like Falco's `load_rules`. A file with an error leaves the loader as it was before
that file: its half-read items never reach a ruleset.
"""

from __future__ import annotations

from tiercel.rules.loader.results import LoadError, LoadResult, Problem, results_json

__all__ = ["LoadError", "LoadResult", "Loader", "Problem", "results_json", "NATIVE_SOURCES"]

# Event sources Tiercel provides itself (Falco gets them from its driver and plugins).
NATIVE_SOURCES = frozenset({"syscall", "k8s_audit"})


class Loader:
    """Loads rules files in sequence into one collector (one load sequence = one engine)."""

    def __init__(self, sources: frozenset[str] | set[str] = NATIVE_SOURCES,
                 engine_version: tuple[int, int, int] | None = None):
        from tiercel import ENGINE_VERSION
        from tiercel.rules.loader.collector import Collector
        from tiercel.rules.loader.compiler import CompileCache, field_ok

        self.sources = set(sources)
        self.engine_version = engine_version or ENGINE_VERSION
        self.collector = Collector(self.sources, field_ok)
        self.compiled = None  # tiercel.rules.loader.compiler.Compiled of the last good load
        self.results: list[LoadResult] = []
        self.cache = CompileCache()  # shared by the files of this load sequence
        self.contents: dict[str, str] = {}

    def load(self, name: str, content: str | bytes) -> LoadResult:
        from tiercel.rules.loader.compiler import compile_all
        from tiercel.rules.loader.reader import Reader

        res = LoadResult(name)
        read_error = getattr(content, "error", None)
        if read_error:
            self.contents[name] = ""
            res.contents = self.contents
            self._fail(res, "LOAD_ERR_FILE_READ", read_error)
            self.results.append(res)
            return res
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError as e:
                content = content.decode("utf-8", "replace")
                self._fail(res, "LOAD_ERR_YAML_PARSE",
                           f"yaml-cpp: error at offset {e.start}: invalid UTF-8 in rules content")
        self.contents[name] = content
        res.contents = self.contents
        if res.errors:
            self.results.append(res)
            return res
        work = self.collector.snapshot()
        work.res = res
        try:
            Reader(name, content, work, res, self.engine_version).read()
            compiled = compile_all(work, res, self.cache)
        except LoadError as e:
            res.errors.append(e.problem)
        except RecursionError:
            self._fail(res, "LOAD_ERR_VALIDATE", "rules content is nested too deeply")
        work.res = None
        if res.successful:
            self.collector = work
            self.compiled = compiled
        self.results.append(res)
        return res

    def _fail(self, res: LoadResult, code: str, message: str) -> None:
        from tiercel.rules.loader.results import RULES_CONTENT, Context, Position

        ctx = Context().child(RULES_CONTENT, "", Position(res.name, 0, 0, 0))
        res.errors.append(Problem(code, message, ctx))
