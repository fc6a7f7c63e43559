"""``pipeline submit``: reports in, drafts out, each group acknowledged after its commit.

Its own module because it imports no database library at first (``commands.py``
loads them at import): with render workers waiting, it reads the files against a lean
read of the unit names and gives the workers the batch before it imports the store,
so they render while it does (pipeline/render/pool.py; bench/bench_intake.py).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .messages import cli_language, text_of
from .proofread.check import count_line
from .readcmds import _deadline, _out
from .reads import iso

if TYPE_CHECKING:
    from .cli import Context
    from .drafts import SubmitOutcome
    from .intake import IntakeResult, Rejection
    from .render.pool import RenderPool

log = logging.getLogger(__name__)


LEDGERS = (".csv", ".xlsx")   # one file of many reports


def cmd_submit(ctx: Context) -> int:
    from .render.pool import RenderPool

    settings, paths = ctx.settings, [Path(p) for p in ctx.args.files]
    # Many files: the render workers start now, their imports overlapping ours.
    pool = RenderPool.start(settings, len(paths))
    try:
        early = _read_early(ctx, paths, pool)
        if early is not None:
            pool = pool or RenderPool.start(settings, len(early.reports))  # a long ledger
            if pool is not None:
                pool.send(early.reports)  # (the ones not fed while reading)
                log.debug("the render workers have the batch before the store is loaded")
        outcome, kept, rejected = _submit(ctx, paths, pool, early)
    finally:
        if pool is not None:
            pool.close()
    outcome.rejected = rejected + outcome.rejected
    _print_submit(ctx, outcome, kept)
    return 1 if outcome.rejected else 0


def _read_early(ctx: Context, paths: list[Path], pool: RenderPool | None
                ) -> IntakeResult | None:
    """The files read against the unit names of a lean read (pipeline/lean.py), before
    this process imports the store, when render workers wait (they get each report as
    soon as it is valid) or a ledger may hold many reports: the workers then render
    while this process reads and loads. None when that does not apply (the store must
    migrate or sync first), or would not pay."""
    from . import lean
    from .intake import read_files
    from .reads import units

    if pool is None and not any(p.suffix.lower() in LEDGERS for p in paths):
        return None
    names = lean.attempt(ctx.settings, lambda reader: {u.name for u in units(reader)})
    if names is None:
        return None
    return read_files(paths, ctx.settings, names, ctx.now(),
                      each=pool.feed if pool is not None else None)


def _submit(ctx: Context, paths: list[Path], pool: RenderPool | None,
            result: IntakeResult | None
            ) -> tuple[SubmitOutcome, dict[tuple[str, int | None], str], list[Rejection]]:
    from .drafts import DraftMaker, SubmitOutcome  # the store loads only now
    from .intake import read_files
    from .intake.unknown import notices
    from .units import unit_names

    settings, store, now = ctx.settings, ctx.store, ctx.now()
    if result is None:
        with store.session() as session:
            result = read_files(paths, settings, unit_names(session), now)
    outcome = SubmitOutcome([], [], [])
    kept = {(r.source, r.row): text for r, text in notices(result.reports)}
    # Each group is acknowledged (printed) only after it committed; a crash loses no
    # report that was printed as accepted.
    for group in DraftMaker(settings).submit_groups(store, result.reports, now, pool=pool):
        if not ctx.args.json:
            _print_accepted(ctx, group, kept)
        outcome.accepted += group.accepted
        outcome.duplicates += group.duplicates
        outcome.rejected += group.rejected
    return outcome, kept, result.rejections


def _print_accepted(ctx: Context, outcome: SubmitOutcome,
                    kept: dict[tuple[str, int | None], str]) -> None:
    lines = []
    for a in outcome.accepted:
        extra = f"  ({len(a.problems)} WeChat problem(s) to fix)" if a.problems else ""
        checked = (f"  (proofreading did not run: {text_of(a.proofread_error, cli_language())})"
                   if a.proofread_error
                   else f"  ({count_line(a.findings)})" if a.findings else "")
        lines.append(f"accepted  #{a.id}  {a.unit}  {a.title}  deadline "
                     f"{_deadline(a.deadline, ctx)}{extra}{checked}\n")
        if (a.source, a.row) in kept:
            lines.append(f"          {kept[a.source, a.row]}\n")
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


def _print_submit(ctx: Context, outcome: SubmitOutcome,
                  kept: dict[tuple[str, int | None], str]) -> None:
    """The batch's JSON document, or (text) what ``_print_accepted`` did not print."""
    settings = ctx.settings
    if ctx.args.json:
        _out({"accepted": [{"id": a.id, "unit": a.unit, "title": a.title,
                            "activity_type": a.activity_type,
                            "deadline": iso(a.deadline, settings), "source": a.source,
                            "row": a.row, "problems": list(a.problems),
                            "findings": a.findings, "proofread_error": a.proofread_error,
                            "notes_kept": kept.get((a.source, a.row))}
                           for a in outcome.accepted],
              "rejected": [{"source": r.source, "row": r.row, "field": r.field,
                            "message": r.message, "code": r.code or None}
                           for r in outcome.rejected],
              "duplicates": [{"source": d.source, "row": d.row, "id": d.id, "title": d.title}
                             for d in outcome.duplicates]})
        return
    for d in outcome.duplicates:
        print(f"duplicate {where(d.source, d.row)}: already submitted as #{d.id} ({d.title}); "
              "no new draft")
    for r in outcome.rejected:
        field = f" field '{r.field}':" if r.field else ""
        print(f"rejected  {where(r.source, r.row)}:{field} {r.text(cli_language())}",
              file=sys.stderr)
    # Problems are listed one a line above; the count is of reports (a whole file that
    # cannot be read counts as one).
    refused = len({(r.source, r.row) for r in outcome.rejected})
    problems = (f" ({len(outcome.rejected)} problems)" if len(outcome.rejected) > refused
                else "")
    print(f"{len(outcome.accepted)} accepted, {len(outcome.duplicates)} duplicate(s), "
          f"{refused} rejected{problems}")


def where(source: str, row: int | None) -> str:
    return f"{source}, row {row}" if row is not None else source
