"""What operators type, read once for every command: durations, times, failure
filters, payloads, and the answer to "go ahead?"."""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import time
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from deadletter.cli.context import EXIT_USAGE, errors
from deadletter.model import ErrorClass, JSONValue
from deadletter.ops.filters import FailureFilter

F = TypeVar("F", bound=Callable[..., Any])

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
DURATION_HELP = "a duration such as 30d, 12h, 90m, 45s, 2w or 1h30m"
TIME_HELP = (
    "a time: a duration ago (24h, 7d), an ISO date or time in local time"
    " (2024-10-12, 2024-10-12T08:30), or epoch seconds"
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def parse_duration(text: str) -> float:
    """Seconds in `text`, a number and a unit, or several (`1h30m`)."""
    cleaned = text.strip().lower()
    parts = DURATION_PART.findall(cleaned)
    if not parts or "".join(number + unit for number, unit in parts) != cleaned:
        raise typer.BadParameter(f"{text!r} is not {DURATION_HELP}")
    return sum(float(number) * UNITS[unit] for number, unit in parts)


def parse_time(text: str) -> float:
    """Epoch seconds of `text` (see TIME_HELP)."""
    cleaned = text.strip()
    if DURATION_PART.match(cleaned.lower()):
        return time.time() - parse_duration(cleaned)
    try:
        return float(cleaned)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(cleaned).timestamp()
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not {TIME_HELP}") from None


PAYLOAD = "'--payload'"


def parse_payload(text: str) -> JSONValue:
    """A payload given inline as JSON, or as `@file` holding JSON."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problem = f"cannot read {path}: {exc.strerror}"
            raise typer.BadParameter(problem, param_hint=PAYLOAD) from None
    try:
        payload: JSONValue = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=PAYLOAD) from None
    return payload


# The options of every command taking a failure filter (`filter_options`).
FILTER_OPTIONS = {
    "queue": Annotated[
        str | None, typer.Option("--queue", "-q", help="Only failures of this queue.")
    ],
    "error_class": Annotated[
        ErrorClass | None, typer.Option("--class", help="Only failures of this class.")
    ],
    "group": Annotated[
        str | None, typer.Option("--group", help="Only failures of this group (a fingerprint).")
    ],
    "since": Annotated[
        float | None,
        typer.Option(parser=parse_time, metavar="TIME", help=f"Failed at or after {TIME_HELP}."),
    ],
    "until": Annotated[
        float | None, typer.Option(parser=parse_time, metavar="TIME", help="Failed before.")
    ],
    "text": Annotated[
        str | None,
        typer.Option(help="Only failures whose message, error type or job id contains this."),
    ],
}


def options_for(name: str, options: dict[str, Any], build: Callable[..., Any]) -> Callable[[F], F]:
    """A decorator giving a command `options` (name -> annotated type, each defaulting
    to None unless its type says otherwise) in place of its parameter `name`, which
    receives `build(**values)`: several commands share one definition of the options."""

    def decorate(command: F) -> F:
        hints = typing.get_type_hints(command, include_extras=True)
        defaults = inspect.signature(build).parameters
        own = [
            parameter.replace(annotation=hints[parameter.name])
            for parameter in inspect.signature(command).parameters.values()
            if parameter.name != name
        ]
        added = [
            inspect.Parameter(
                option,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=hint,
                default=defaults[option].default,
            )
            for option, hint in options.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {option: kwargs.pop(option) for option in options}
            return command(*args, **{name: build(**values)}, **kwargs)

        signature = inspect.Signature([*own, *added])
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return typing.cast(F, wrapper)

    return decorate


def failure_filter(
    *,
    queue: str | None = None,
    task: str | None = None,
    error_class: ErrorClass | None = None,
    group: str | None = None,
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
) -> FailureFilter:
    return FailureFilter(
        queue=queue,
        task=task,
        error_class=error_class.value if error_class else None,
        fingerprint=group,
        since=since,
        until=until,
        text=text,
    )


filter_options = options_for("failure_filter", FILTER_OPTIONS, failure_filter)


def confirmed(question: str, *, yes: bool) -> bool:
    """True when the operator said yes (`--yes`, or at the prompt). Without a terminal to
    ask at, nothing is changed and the command fails (exit 2): a cron job missing --yes
    must not look as if it had done its work."""
    if yes:
        return True
    if not sys.stdin.isatty():
        errors.print(
            "[bold red]error:[/] nothing was changed: there is no terminal to ask at;"
            " pass --yes to go ahead (--dry-run shows the plan alone)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    return typer.confirm(question, default=False, err=True)  # stdout stays for --json
