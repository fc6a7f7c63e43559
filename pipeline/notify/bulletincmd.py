"""``pipeline bulletin``: written from a lean start when it only writes files.

Without ``--send`` the bulletin changes nothing in the database, so it is gathered
through the DB-API alone (``lean.py``) when that applies, without SQLAlchemy, SQLModel or
the outbox; otherwise (``--send``, a database that must be migrated or synced, any
database error) through the store as always. Both paths gather with the same statements
(``bulletin.gather``) and print the same lines (tests/test_lean.py compares them).
"""

from __future__ import annotations

import json
from typing import Any

from .. import lean
from ..reads import Reader
from .bulletin import (
    BulletinData,
    BulletinOutcome,
    IsoWeek,
    bulletin_json,
    bulletin_key,
    gather,
    write_week,
)
from .reports import DeliveryReport, recipients


def cmd_bulletin(ctx: Any) -> int:
    settings, now = ctx.settings, ctx.now()
    week = ctx.args.week or IsoWeek.of(now.astimezone(settings.tz).date()).previous()
    outcome = None
    if not ctx.args.send:  # writes files only: the lean start when it applies

        def read(reader: Reader) -> BulletinData:
            return gather(reader, settings, week, now)
        data = lean.attempt(settings, read)
        if data is not None:
            outcome = BulletinOutcome(bulletin_key(week), week,
                                      recipients=recipients(settings))
            write_week(settings, outcome, data)
    if outcome is None:  # the normal path: the store (migrated, units synced), the outbox
        from .bulletin import send_bulletin

        outcome = send_bulletin(ctx.store, settings, week, now, send=ctx.args.send)
    if getattr(ctx.args, "json", False) and outcome.data is not None:
        print(json.dumps(bulletin_json(outcome.data, settings), ensure_ascii=False, indent=2))
        return 1 if outcome.key in outcome.delivery.failed else 0
    if outcome.existing is not None:
        print(f"the bulletin for {week.label} is already in the outbox ({outcome.existing}); "
              "not written or queued again")
        return report_delivery(outcome.delivery, outcome.key)
    for path in outcome.paths:
        print(f"written: {path}")
    print(f"bulletin {week.label} ({week.monday} to {week.sunday}): "
          f"{len(outcome.silent)} unit(s) reported nothing")
    if not ctx.args.send:
        print(f"not sent (add --send to email it to {len(outcome.recipients)} recipient(s))")
        return 0
    print(f"bulletin {week.label} queued for {', '.join(outcome.recipients)}")
    if outcome.units_sent:
        print(f"and for {len(outcome.units_sent)} unit(s), each with its own line "
              f"highlighted: {', '.join(outcome.units_sent)}")
    return report_delivery(outcome.delivery, outcome.key)


def report_delivery(report: DeliveryReport, key: str) -> int:
    print(report.summary())
    for error in report.errors:
        print(f"not sent: {error}")
    return 1 if key in report.failed else 0
