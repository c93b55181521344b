"""`deadletter dlq`: the dead-letter queues' own letters. `rehandle` hands parked letters
(those the handler gave up on for a fault of their own) back to the handler, as the bulk
commands act: the plan first, then a confirmation (--yes skips it), audited as
`cli:<os user>`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from deadletter.cli.context import EXIT_ERROR, actor, console, open_app, print_json
from deadletter.cli.params import FILTER_OPTIONS, Json, Yes, confirmed, failure_filter, options_for
from deadletter.errors import InvalidRequest
from deadletter.ops.filters import MAX_LIMIT, FailureFilter
from deadletter.ops.rehandle import ParkedLetter, Rehandling
from deadletter.ops.rehandle import rehandle as hand_back

dlq_app = typer.Typer(
    help="The dead-letter queues' own letters: hand parked ones back to the handler.",
    no_args_is_help=True,
)

# A parked letter is not classified yet: of the failure filter, what it has.
PARKED_FILTER = {
    "queue": FILTER_OPTIONS["queue"],
    "task": Annotated[str | None, typer.Option(help="Only failures of this task.")],
    "since": FILTER_OPTIONS["since"],
    "until": FILTER_OPTIONS["until"],
    "text": FILTER_OPTIONS["text"],
}


@dlq_app.command("rehandle")
@options_for("failure_filter", PARKED_FILTER, failure_filter)
def rehandle(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="Ids of parked letters, of their dead letters, or of their jobs."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log (needed to act).")] = "",
    everything: Annotated[
        bool, typer.Option("--all", help="With no id and no filter: every parked letter.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    yes: Yes = False,
    limit: Annotated[int, typer.Option(help=f"At most this many (1-{MAX_LIMIT}).")] = MAX_LIMIT,
    as_json: Json = False,
    *,
    failure_filter: FailureFilter,
) -> None:
    """Hand parked dead letters back to the DLQ handler, after their fault is fixed.

    Each is queued on its DLQ again with a fresh retry budget, one audit record each; \
the handler records and routes it then, and raises no notification or alert a second \
time. The letters that match and a count first, then a confirmation. Exits 1 when an \
id given has no parked letter."""
    with open_app(ctx) as app:

        def run(dry: bool) -> Rehandling:
            return hand_back(
                app.store,
                ids=ids or [],
                failure_filter=failure_filter,
                all=everything,
                actor=actor(),
                reason=reason,
                policy=app.policy,
                dry_run=dry,
                limit=limit,
            )

        plan = run(True)
        document: dict[str, Any] = {"plan": asdict(plan)}
        if not as_json:
            _show(plan)
        acting = not dry_run and bool(plan.letters)
        if acting and not reason.strip():  # asked before the question, not after
            raise InvalidRequest("reason", "is required to hand letters back (--reason)")
        question = f"hand {len(plan.letters)} parked letter(s) back to the handler?"
        if not (acting and confirmed(question, yes=yes)):
            done = plan
        else:
            done = run(False)
            document["result"] = asdict(done)
            if not as_json:
                _show(done)
    if as_json:
        print_json(document)
    if done.refused:
        raise typer.Exit(EXIT_ERROR)


def _show(done: Rehandling) -> None:
    verb = "would hand back" if done.dry_run else "handed back"
    for letter in done.letters:
        console.print(_line(letter), markup=False)
    beyond = len(done.letters) < done.count
    more = f" of {done.count} parked (run again for the rest)" if beyond else ""
    console.print(Text(f"{verb} {len(done.letters)} letter(s){more}", style="green"))
    for refusal in done.refused:
        console.print(Text(refusal.message, style="yellow"))


def _line(letter: ParkedLetter) -> str:
    failed = datetime.fromtimestamp(letter.failed_at).isoformat(timespec="seconds")
    return (
        f"{letter.dead_letter_id} (job {letter.job_id}, {letter.task} on {letter.queue},"
        f" failed {failed}, {letter.attempts} tries): {letter.error or ''}"
    )
