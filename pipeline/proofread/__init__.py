"""Proofreading stage (校对): checks an article and records findings; never edits text.

Kinds: ``typo`` (confusion list), ``banned`` and ``caution`` (Xinhua's banned and
caution words), ``name`` (the workspace glossary), ``privacy`` (phone and ID
numbers, licence plates, named people in protected groups), ``format`` (half-width
punctuation in Chinese, unpaired quotes and brackets, a title over the limit).
The checks are pure (``check.py``), the lists are data (``lists.py``, ``data/``),
the findings live on the draft (``record.py``).
"""

from __future__ import annotations

from .check import BLOCKING, Hit, proofread_text
from .lists import Lexicon, load_lexicon
from .record import (
    Outcome,
    apply_finding,
    blocking_findings,
    count_line,
    dismiss_finding,
    finding_json,
    last_run,
    open_findings,
    proofread_draft,
    require_confirmation,
)

__all__ = ["BLOCKING", "Hit", "Lexicon", "Outcome", "apply_finding", "blocking_findings",
           "count_line", "dismiss_finding", "finding_json", "last_run", "load_lexicon",
           "open_findings", "proofread_draft", "proofread_text", "require_confirmation"]
