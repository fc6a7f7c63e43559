"""Reach: how many people read, shared and liked each story (WeChat's analytics), and
where else it was reported (宣传报道 classified by media level).

- ``fetch``: the daily analytics job (``reach_due`` is the scheduler hook).
- ``media`` / ``coverage``: outlet lists and the classification of reported coverage.
- ``stats`` / ``chart``: figures as the digest, bulletin, desk and CLI show them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import PipelineError, StoreError

if TYPE_CHECKING:  # the CLI imports reach.options for its parser: keep this package light
    from ..config import Settings
    from ..store import Store

log = logging.getLogger(__name__)


def reach_tick(store: Store, settings: Settings, now: datetime) -> None:
    """The scheduler's call: fetch what is owed; never raises (the next tick tries again)."""
    from .fetch import enabled, reach_due

    if not enabled(settings):
        return
    try:
        report = reach_due(store, settings, now)
        if report is not None:
            log.info("reach: %s", report.summary())
    except StoreError:
        raise  # the tick logs a lost database once
    except PipelineError as exc:
        log.error("reach fetch failed: %s", exc)
