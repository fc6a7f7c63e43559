"""What ``check`` reports of its alert emails and of the outbox: plain data with the
summary line, in a module that loads no database library (the lean start of
``pipeline check`` prints the same line, see ``pipeline/readcmds.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings

WEEKDAYS = "一二三四五六日"


def recipients(settings: Settings) -> list[str]:
    """Editors and leaders, each once, in config order (the digest's and the bulletin's)."""
    seen: dict[str, str] = {}
    for address in (*settings.notify.editors, *settings.notify.leaders):
        seen.setdefault(address.lower(), address)
    return list(seen.values())


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)       # outbox keys
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: int = 0          # pending and not attempted: no SMTP host configured
    errors: list[str] = field(default_factory=list)      # one sentence per failed attempt

    def summary(self) -> str:
        if self.held:
            return (f"smtp.host is not set: {self.held} email(s) kept in the outbox, not sent")
        return (f"{len(self.sent)} email(s) sent, {len(self.retrying)} to retry, "
                f"{len(self.failed)} failed")


@dataclass
class QueueResult:
    queued: list[str] = field(default_factory=list)       # outbox keys, one per person
    alerts: int = 0                                        # alerts handed to the outbox
    unaddressed: list[int] = field(default_factory=list)   # alert ids that had no address


@dataclass
class AlertReport:
    queue: QueueResult = field(default_factory=QueueResult)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    error: str = ""      # a template error: nothing was queued this run

    def summary(self) -> str:
        text = (f"{self.queue.alerts} alert(s) in {len(self.queue.queued)} email(s) queued; "
                f"{self.delivery.summary()}")
        if self.queue.unaddressed:
            text += f"; {len(self.queue.unaddressed)} alert(s) had no address"
        return text + (f"; error: {self.error}" if self.error else "")


