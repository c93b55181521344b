"""One name, one thing: no two modules of deadletter define a class or a type alias of
the same name, so that a name read anywhere means one thing (issue 9).

The exception: the faces' parameter types, which name the same parameter (a page
cursor, a limit, a reason, a name, a job id) once per framework (FastAPI, Typer).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "deadletter"

# The same parameter, declared for each face's framework.
FACE_PARAMETERS = {"Cursor", "JobId", "Limit", "Name", "Reason"}
FACES = ("api/", "cli/", "web/")


def defined_names(module: ast.Module) -> set[str]:
    """Classes and type aliases (a capitalised name, not a CONSTANT) at module level."""
    names = {node.name for node in module.body if isinstance(node, ast.ClassDef)}
    for node in module.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id[:1].isupper():
                names.add(target.id)
    return {name for name in names if not name.isupper()}


def test_no_two_modules_define_one_name() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        for name in defined_names(ast.parse(path.read_text(), str(path))):
            where[name].append(relative)
    twice = {
        name: paths
        for name, paths in where.items()
        if len(paths) > 1
        and not (name in FACE_PARAMETERS and all(p.startswith(FACES) for p in paths))
    }
    assert twice == {}
