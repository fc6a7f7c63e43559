"""The one exception tree of the pipeline.

Every message is a full sentence a person can act on. Library errors are
translated into these at the boundary where they occur (``raise ... from exc``);
the CLI prints ``error: <message>`` and the web layer shows the same sentence.

    PipelineError
    ├── ConfigError        config.toml is wrong (lists every bad key at once)
    ├── SubmissionError    a report was rejected (names source, row and field)
    ├── RenderError        a template or WeChat content rule failed
    ├── ReviewError        an illegal status transition was asked for
    │   ├── TransitionError  a move not in the lifecycle table, or a lost race
    │   │   └── RaceLost     another person acted first: who, what, already_done
    │   └── EditConflict     someone saved the draft since this editor opened it
    ├── StoreError         the database is unusable or locked by another process
    ├── ScheduleError      the scheduler cannot start (another instance runs)
    ├── PublishError       publishing failed (``retryable`` says whether to try again)
    │   └── WeChatAPIError an error answer or transport failure of the WeChat API
    └── NotifyError        an email could not be composed or sent
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound="PipelineError")


class PipelineError(Exception):
    """Base of every error the pipeline reports to a user.

    An error made with ``coded(code, **params)`` carries a code of the vocabulary
    (``pipeline.messages.CODES``); its text comes from the catalogues in the reader's
    language (``text(language)``); ``str()`` is the English sentence (logs).
    """

    code: str = ""
    params: dict[str, object]

    @classmethod
    def coded(cls: type[E], code: str, **params: object) -> E:
        from .messages import render

        error = cls(render(code, "en", **params))
        error.code, error.params = code, params
        return error

    def text(self, language: str = "zh_CN") -> str:
        """The sentence in ``language`` (the English sentence for an uncoded error)."""
        if not self.code:
            return str(self)
        from .messages import render

        return render(self.code, language, **self.params)


class ConfigError(PipelineError):
    """config.toml is invalid; ``problems`` holds one sentence per bad key.

    Each problem is a ``messages.Coded`` (its English sentence, keeping its code and
    the key as a parameter), so ``text(language)`` says the header and every problem
    in the reader's language; a plain string stays as it is.
    """

    def __init__(self, problems: Sequence[str], path: str = "config.toml") -> None:
        from .messages import render

        self.problems = list(problems)
        self.path = path
        lines = "\n".join(f"  {p}" for p in self.problems)
        params: dict[str, object] = {"path": path, "count": len(self.problems)}
        super().__init__(f"{render('config.problems', 'en', **params)}\n{lines}")
        self.code, self.params = "config.problems", params

    def text(self, language: str = "zh_CN") -> str:
        from .messages import render, text_of

        lines = "".join(f"\n  {text_of(p, language)}" for p in self.problems)
        return render(self.code, language, **self.params) + lines


class SubmissionError(PipelineError):
    """One report was rejected: which file, which row, which field and why."""

    def __init__(self, message: str, *, source: str = "", row: int | None = None,
                 field: str = "") -> None:
        self.message = message
        self.source = source
        self.row = row
        self.field = field
        where = source + (f", row {row}" if row is not None else "")
        prefix = f"{where}: " if where else ""
        label = f"{field}: " if field else ""
        super().__init__(f"{prefix}{label}{message}")

    @classmethod
    def rule(cls, code: str, params: Mapping[str, object], *, source: str = "",
             row: int | None = None, field: str = "") -> SubmissionError:
        """A rejection by a rule of the vocabulary (its English text as ``message``)."""
        from .messages import render

        error = cls(render(code, "en", **params), source=source, row=row, field=field)
        error.code, error.params = code, dict(params)
        return error

    def text(self, language: str = "zh_CN") -> str:
        """The value and the rule in ``language`` (without the file, row and field)."""
        return super().text(language) if self.code else self.message


class RenderError(PipelineError):
    """A template failed or the article breaks a WeChat content rule."""


class ReviewError(PipelineError):
    """An editor action is not allowed in the draft's current state (always coded:
    ``draft.*``, ``review.*``, ``finding.*``)."""


class TransitionError(ReviewError):
    """A state move is not in its machine's table, or someone else moved the row first."""

    lost_race: bool = False


class RaceLost(TransitionError):
    """Someone else acted on the row first: what they did, who and when (coded), and
    whether the row now stands where this caller wanted it (``already_done``: a second
    signature of the same stage, a second release of the same push)."""

    lost_race = True
    already_done: bool = False

    @classmethod
    def of(cls, code: str, already_done: bool, **params: object) -> RaceLost:
        error = cls.coded(code, **params)
        error.already_done = already_done
        return error


class EditConflict(ReviewError):
    """Another editor saved the draft first: ``version`` is the one now committed."""

    def __init__(self, draft_id: int, version: int) -> None:
        self.draft_id = draft_id
        self.version = version
        from .messages import render

        params: dict[str, object] = {"id": draft_id, "version": version}
        super().__init__(render("draft.edit_conflict", "en", **params))
        self.code, self.params = "draft.edit_conflict", params


class ProofreadError(PipelineError):
    """A proofreading word list is missing or does not parse (names the file and line)."""


class StoreError(PipelineError):
    """The database cannot be opened, migrated or written (``store.unavailable``,
    ``store.read_only``): the web answers 503, the scheduler retries at its next tick."""


class ScheduleError(PipelineError):
    """The scheduler cannot start, for example because another instance holds the lock."""


class PublishError(PipelineError):
    """Publishing failed; ``retryable`` tells whether trying again later may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class ErrorKind(Enum):
    """What the caller should do about a failed WeChat call (never decide on the raw code)."""

    TOKEN = "token"          # the access token was rejected: refresh once, retry once
    RETRY = "retry"          # rejected without effect: safe to try again soon
    DEFER = "defer"          # a daily quota is used up: try again after the quota day resets
    AMBIGUOUS = "ambiguous"  # WeChat may or may not have done it: reconcile before any retry
    FINAL = "final"          # rejected for good: a person has to change something


class WeChatAPIError(PublishError):
    """An error answer or transport failure of the WeChat API.

    ``errcode`` is None for transport failures (timeouts, resets, HTTP 5xx).
    ``retryable`` is True for TOKEN, RETRY and DEFER; an AMBIGUOUS outcome is
    not retryable until a reconciler has checked what WeChat actually did.
    """

    def __init__(self, message: str, *, kind: ErrorKind, endpoint: str,
                 errcode: int | None = None, errmsg: str = "") -> None:
        self.kind = kind
        self.endpoint = endpoint
        self.errcode = errcode
        self.errmsg = errmsg
        retryable = kind in (ErrorKind.TOKEN, ErrorKind.RETRY, ErrorKind.DEFER)
        super().__init__(message, retryable=retryable)


class NotifyError(PipelineError):
    """An email could not be composed or delivered; ``permanent`` means do not retry."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)
