"""Every error deadletter raises derives from one root, `errors.DeadletterError`.

An `ast` walk over src/deadletter, like the layering test: a `raise` of a built-in
exception, or of a class defined in deadletter outside the tree, fails unless
`ALLOWED` lists it with its reason. Raising what a framework asks for (FastAPI's
HTTPException, Typer's Exit) and re-raising a caught exception are not deadletter's
own errors and are not checked.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "deadletter"
ROOT = "DeadletterError"

BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}

# (file under src/deadletter, exception) -> why it is not deadletter's own error.
ALLOWED: dict[tuple[str, str], str] = {
    # abstract methods of the store's mixins, filled in by each backend
    ("store/fleet.py", "NotImplementedError"): "an abstract method",
    ("store/prune.py", "NotImplementedError"): "an abstract method",
    ("store/schedules.py", "NotImplementedError"): "an abstract method",
    # json.loads hooks: the caller catches ValueError and raises InvalidRequest
    ("api/routing.py", "ValueError"): "a json.loads hook; parse_strict translates it",
    ("ops/filters.py", "ValueError"): "a json.loads hook; decode_cursor translates it",
    # pydantic turns a validator's ValueError into its validation error (a 422)
    ("api/models.py", "ValueError"): "a pydantic validator",
    # raised as the OS would, inside the blob store's `_errors`, which translates them
    ("forensics/filesystem.py", "OSError"): "translated to BlobStoreUnavailable",
    ("forensics/filesystem.py", "NotADirectoryError"): "translated to BlobStoreUnavailable",
    # an optional extra that is not installed: Python's convention for a missing module
    ("integrations/celery.py", "ImportError"): "an optional extra is missing",
    ("integrations/dramatiq.py", "ImportError"): "an optional extra is missing",
    ("integrations/rq.py", "ImportError"): "an optional extra is missing",
    # a programmer passed an object of the wrong type: Python's convention
    ("integrations/dramatiq.py", "TypeError"): "a broker of the wrong type",
    ("integrations/core.py", "TypeError"): "a task of the wrong type under the re-drive's name",
    # the demo's stand-in for an HTTP client's error, classified by its status like one
    ("demo.py", "UpstreamHTTPError"): "stands in for a third-party client's exception",
}


def parsed() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        yield path.relative_to(SOURCE).as_posix(), ast.parse(path.read_text(), str(path))


def tree_classes(modules: list[tuple[str, ast.Module]]) -> tuple[set[str], set[str]]:
    """Names of the classes defined in deadletter: all of them, and those under ROOT."""
    bases: dict[str, set[str]] = {}
    for _, module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef):
                names = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
                bases.setdefault(node.name, set()).update(names)
    rooted = {ROOT}
    while grown := {name for name, of in bases.items() if of & rooted} - rooted:
        rooted |= grown
    return set(bases), rooted


def raised_name(node: ast.Raise) -> str | None:
    """The class a `raise` names, or None for a re-raise or a computed exception."""
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name) and exc.id[:1].isupper():
        return exc.id
    return None


def unrooted_raises() -> list[tuple[str, str, int]]:
    modules = list(parsed())
    defined, rooted = tree_classes(modules)
    found = []
    for path, module in modules:
        for node in ast.walk(module):
            if not isinstance(node, ast.Raise) or (name := raised_name(node)) is None:
                continue
            ours_unrooted = name in defined and name not in rooted
            if (name in BUILTIN_ERRORS or ours_unrooted) and (path, name) not in ALLOWED:
                found.append((path, name, node.lineno))
    return found


def test_every_error_deadletter_raises_derives_from_the_root() -> None:
    assert unrooted_raises() == []


def test_the_allow_list_names_only_raises_that_exist() -> None:
    modules = dict(parsed())
    stale = [
        (path, name)
        for path, name in ALLOWED
        if not any(
            isinstance(node, ast.Raise) and raised_name(node) == name
            for node in ast.walk(modules[path])
        )
    ]
    assert stale == []


def test_the_walk_sees_a_builtin_raise() -> None:
    module = ast.parse("raise ValueError('x')")
    node = module.body[0]
    assert isinstance(node, ast.Raise)
    assert raised_name(node) == "ValueError"
