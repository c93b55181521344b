"""The package layering of docs/architecture.md, checked by walking every import.

Each unit (a top-level module or a package of `deadletter`) may import only the units
listed for it. Every import counts: at module level, inside a function, and under
`if TYPE_CHECKING:`, since a type-only import is a dependency too. A new package must
be declared here and in docs/architecture.md before it can land.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "deadletter"

FOUNDATION = {"errors", "model", "config"}
SHARED = {"classify", "redact", "events", "payloads", "breaker"}
SERVICES = FOUNDATION | SHARED | {"store", "forensics", "ops"}

# Lowest layer first; each unit may import the units of its set, nothing else.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": {"errors"},
    "config": {"errors"},
    # cross-cutting pieces: depend on nothing above the foundation
    "classify": {"errors", "model"},
    "redact": {"errors"},
    "events": {"redact"},
    "payloads": {"errors"},
    # a circuit breaker for a component, and its outage's events and alerts
    "breaker": {"events", "redact"},
    # persistence
    "store": {"errors", "model"},
    "forensics": {"errors", "model"},
    # running jobs, handling dead letters, delivering what they raise
    "tasks": {"errors", "model", "store", "payloads"},
    # periodic jobs: cron ticks and the scheduler, enqueueing through the store
    "schedules": {"errors", "model", "store", "tasks"},
    # redact: an attempt's error is redacted of secrets before it is written.
    "worker": FOUNDATION | {"classify", "redact", "store"},
    "dlq": FOUNDATION | SHARED | {"store", "forensics"},
    "notify": FOUNDATION | {"redact", "events", "breaker", "store"},
    # reporting to error trackers and tracers, each behind its optional extra; dlq: the
    # fingerprint of a failure's group
    "telemetry": FOUNDATION | {"redact", "store", "worker", "dlq"},
    # the service layer operators use
    # schedules: a schedule's next run, for `deadletter schedules`
    "ops": FOUNDATION | {"redact", "payloads", "store", "forensics", "schedules"},
    # the composition root
    "wiring": FOUNDATION
    | SHARED
    | {"store", "forensics", "worker", "dlq", "notify", "ops", "telemetry"},
    # telemetry: the type of the tracing it holds, under TYPE_CHECKING; redact: the
    # redactors it builds once for its workers and DLQ handler
    "app": FOUNDATION
    | {"classify", "redact", "store", "tasks", "schedules", "worker", "wiring", "telemetry"},
    "demo": FOUNDATION | {"app", "tasks", "worker"},
    # faces: over the service layer and the composition root
    "api": SERVICES | {"app", "wiring"},
    "web": SERVICES | {"app", "wiring", "api"},
    "cli": SERVICES | {"app", "wiring", "api", "web", "demo", "worker"},
    "integrations": FOUNDATION | {"classify", "redact", "store", "tasks", "worker", "app"},
}
# The package's own `__init__`: the public surface, re-exported from any unit.
PUBLIC = "deadletter"


def unit_of(module: str) -> str:
    """`deadletter.store.sqlite` -> `store`; `deadletter.App` -> `App` (not a unit: refused)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PUBLIC


def module_name(path: Path, source: Path = SOURCE) -> str:
    parts = path.relative_to(source.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, source: Path = SOURCE) -> Iterator[tuple[int, str]]:
    """(line, module) of every `deadletter` import in the file, at any depth."""
    package = module_name(path, source).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from deadletter import demo` imports the unit `demo`, so the names count.
            names = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from ((node.lineno, name) for name in names if name.split(".")[0] == PUBLIC)


def forbidden() -> Iterator[str]:
    for path in sorted(SOURCE.rglob("*.py")):
        source = unit_of(module_name(path))
        if source == PUBLIC:
            continue
        if source not in ALLOWED:
            yield f"{path}: unit {source!r} is not declared in tests/unit/test_layering.py"
            continue
        for line, target in imports(path):
            wanted = unit_of(target)
            if wanted != source and wanted not in ALLOWED[source]:
                yield f"{path}:{line}: {source} may not import {target}"


def import_graph() -> dict[str, set[str]]:
    """The units each unit imports, as the code has it (docs/architecture.md shows it)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        source = unit_of(module_name(path))
        if source != PUBLIC:
            targets = {unit_of(target) for _, target in imports(path)}
            graph.setdefault(source, set()).update(targets - {source})
    return graph


def test_no_unit_imports_above_its_layer() -> None:
    assert list(forbidden()) == []


@pytest.mark.parametrize("graph", ["the layering table", "the code"])
def test_no_import_cycle(graph: str) -> None:
    units = ALLOWED if graph == "the layering table" else import_graph()
    try:
        TopologicalSorter(units).prepare()
    except CycleError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{graph} has an import cycle: {exc.args[1]}")


def test_a_forbidden_import_is_found(tmp_path: Path) -> None:
    """The walk sees imports inside functions and under TYPE_CHECKING."""
    module = tmp_path / "deadletter" / "store" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from deadletter.ops.failures import FailureItem\n"
        "def f() -> None:\n    from ..dlq import handler\n"
    )
    found = [target for _, target in imports(module, tmp_path / "deadletter")]
    assert found == ["deadletter.ops.failures.FailureItem", "deadletter.dlq.handler"]
    assert all(unit_of(target) not in ALLOWED["store"] for target in found)


# SQL keywords as the code writes them (upper case): prose says "select", SQL "SELECT";
# and a condition's fragments: a comparison with a placeholder, IS NULL, LIKE, IN (...),
# a JSON member read (->>).
SQL = re.compile(
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|FROM|WHERE|JOIN|EXISTS|ORDER BY"
    r"|IS (NOT )?NULL|LIKE)\b|\bIN \(|->>|\w\s*(=|<>|<=|>=|<|>)\s*\?"
)


def sql_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant or f-string in the file that reads as SQL;
    docstrings are prose, and left out."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v for v in node.values if isinstance(v, ast.Constant)]
            inside_fstrings.update(id(part) for part in parts)
            text = "".join(str(part.value) for part in parts)
            if SQL.search(text):
                yield node.lineno, text
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings | inside_fstrings
            and SQL.search(node.value)
        ):
            yield node.lineno, node.value


def sql_outside_store() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if relative.startswith("store/"):
            continue
        lines = [line for line, _ in sql_texts(path)]
        if lines:
            found[relative] = lines
    return found


def test_only_the_store_holds_sql() -> None:
    assert sql_outside_store() == {}


def test_sql_is_found_in_strings_and_fstrings_but_not_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        '"""Select the rows FROM which..."""\n'
        'A = "SELECT 1 FROM t"\n'
        'def f(n: int) -> str:\n    """WHERE it is."""\n'
        '    return f"DELETE FROM t WHERE id IN ({n})"\n'
        'B = "select a queue from the list"\n'
        'C = ("f.queue = ?", ("q",))\n'
        'D = "Which queue? All of them."\n'
    )
    assert [line for line, _ in sql_texts(module)] == [5, 2, 7]


if __name__ == "__main__":
    for unit, targets in sorted(import_graph().items()):
        print(f"{unit:<12} -> {' '.join(sorted(targets))}")
