"""Traceback text of a failed attempt, as `traceback.format_exception` writes it, cheaply.

The standard formatter stats every source file in the stack (`linecache.checkcache`)
and parses each source line to draw its `^^^^` markers. A stat releases the GIL, and
the worker's store thread, busy with its batch, then keeps it for up to a switch
interval (5 ms): failures cost about a millisecond each, most of it waiting. Here
source lines come from linecache without the stat (a file is read once, when first
seen) and the marker lines are left out. The text is otherwise the same: the header,
`File "...", line N, in function` lines with their source, the chain of causes and
contexts, and the final `module.Type: message` line with any notes, which is what
fingerprints (dlq/fingerprint.py) and readers rely on.

Exception groups and syntax errors, which have layouts of their own (nested trees,
a caret under the offending column), are formatted by the standard library.
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

# What traceback.format_exception writes between an exception and the one it caused.
CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
HEADER = "Traceback (most recent call last):\n"
# Identical frames in a row shown before "[Previous line repeated N more times]".
RECURSIVE_CUTOFF = 3


def format_failure(exc: BaseException) -> str:
    """`"".join(traceback.format_exception(exc))` without the marker lines."""
    chain = _chain(exc)
    if any(isinstance(item, BaseExceptionGroup | SyntaxError) for _, item in chain):
        return "".join(traceback.format_exception(exc))
    parts: list[str] = []
    for link, item in reversed(chain):
        if item.__traceback__ is not None:
            parts.append(HEADER)
            parts.extend(_frames(item.__traceback__))
        parts.extend(_final_lines(item))
        parts.append(link)
    return "".join(parts)


def _chain(exc: BaseException) -> list[tuple[str, BaseException]]:
    """The exception, then what it was raised from or while handling, and so on; each
    with the text printed after it. A cycle ends the chain, as in the standard library."""
    chain = [("", exc)]
    seen = {id(exc)}
    link, following = _cause(exc)
    while following is not None and id(following) not in seen:
        chain.append((link, following))
        seen.add(id(following))
        link, following = _cause(following)
    return chain


def _cause(exc: BaseException) -> tuple[str, BaseException | None]:
    if exc.__cause__ is not None:
        return CAUSE, exc.__cause__
    if exc.__context__ is not None and not exc.__suppress_context__:
        return CONTEXT, exc.__context__
    return "", None


def _frames(tb: TracebackType) -> Iterator[str]:
    """One entry per frame; a recursion shows its first few repeats, then their count."""
    last: tuple[str, int | None, str] | None = None
    count = 0
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        key = (code.co_filename, lineno, code.co_name)
        if key != last:
            yield from _repeated(count)
            last, count = key, 0
        count += 1
        if count <= RECURSIVE_CUTOFF:
            yield _frame(code.co_filename, lineno, code.co_name, frame.f_globals)
    yield from _repeated(count)


def _frame(filename: str, lineno: int | None, name: str, module_globals: dict[str, Any]) -> str:
    text = f'  File "{filename}", line {lineno}, in {name}\n'
    line = linecache.getline(filename, lineno, module_globals).strip() if lineno else ""
    return f"{text}    {line}\n" if line else text


def _repeated(count: int) -> list[str]:
    extra = count - RECURSIVE_CUTOFF
    if extra <= 0:
        return []
    return [f"  [Previous line repeated {extra} more time{'s' if extra > 1 else ''}]\n"]


def _final_lines(exc: BaseException) -> list[str]:
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("__main__", "builtins"):
        name = f"{kind.__module__}.{name}"
    text = _safe(str, exc, "exception")
    lines = [f"{name}: {text}\n" if text else f"{name}\n"]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, Sequence) and not isinstance(notes, str):
        lines.extend(f"{line}\n" for note in notes for line in _safe(str, note, "note").split("\n"))
    elif notes is not None:
        lines.append(_safe(repr, notes, "__notes__"))
    return lines


def _safe(render: Callable[[object], str], value: object, what: str) -> str:
    """`render(value)`, or the standard library's placeholder when that raises."""
    try:
        return render(value)
    except Exception:
        return f"<{what} {render.__name__}() failed>"
