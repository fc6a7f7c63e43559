"""Proofreading stage (校对): checks an article and records findings; never edits text.

Kinds: ``typo`` (confusion list), ``banned`` and ``caution`` (Xinhua's banned and
caution words), ``name`` (the workspace glossary), ``privacy`` (phone and ID
numbers, licence plates, named people in protected groups), ``format`` (half-width
punctuation in Chinese, unpaired quotes and brackets, a title over the limit).
The checks are pure (``check.py``), the lists are data (``lists.py``, ``data/``),
the findings live on the draft (``record.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .check import BLOCKING, Checker, Hit, count_line, proofread_text
from .lists import Lexicon, load_lexicon

if TYPE_CHECKING:
    from .record import (
        Outcome,
        apply_finding,
        blocking_findings,
        dismiss_finding,
        finding_json,
        last_run,
        open_findings,
        proofread_draft,
        require_confirmation,
    )

__all__ = ["BLOCKING", "Checker", "Hit", "Lexicon", "Outcome", "apply_finding",
           "blocking_findings", "count_line", "dismiss_finding", "finding_json", "last_run",
           "load_lexicon", "open_findings", "proofread_draft", "proofread_text",
           "require_confirmation"]


def __getattr__(name: str) -> object:
    # The findings' rows (record.py) need the store's tables; a render worker imports
    # only the checks, without SQLAlchemy (pipeline/render/pool.py).
    if name in __all__:
        from . import record

        return getattr(record, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
