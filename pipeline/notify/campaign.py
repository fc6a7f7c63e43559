"""Progress towards the campaign plan, and the split of delays between a unit and the desk
(pure: the bulletin gathers the facts, these functions judge them).

A plan item is owed by levels or named units (``PlanItem.who``); a report counts towards
it by type, by form (any one of several), and, for joint activities, only when it names a
partner. Targets count published stories; what is reported but not out yet is shown
beside them. Households (户) are counted where the item is measured in households.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import PlanItem
from ..domain import Level


@dataclass(frozen=True)
class Activity:
    """One report counted towards the plan (not rejected, inside the campaign)."""

    unit: str
    activity_type: str
    form: str = ""
    partners: int = 0                   # how many partner units the report names
    households: int | None = None       # the 户 the report gives, if it gives them
    published: bool = False             # out by the end of the bulletin's week
    count: int = 1                      # reports alike in all the above (counted by the store)


@dataclass(frozen=True)
class Progress:
    item: PlanItem
    done: int                           # published
    reported: int                       # reported, not published yet

    @property
    def met(self) -> bool | None:
        """True/False against the target's lower bound; None for an item with no number."""
        return None if self.item.target is None else self.done >= self.item.target.low

    @property
    def over(self) -> bool:
        target = self.item.target
        return target is not None and target.high is not None and self.done > target.high

    @property
    def gap(self) -> int:
        target = self.item.target
        return 0 if target is None else max(0, target.low - self.done)


def amount(item: PlanItem, activity: Activity) -> int:
    """What one report adds to an item: its households, or one activity."""
    return _amount(item, activity.households)


def _amount(item: PlanItem, households: int | None) -> int:
    if item.measure == "households" and households is not None:
        return households
    return 1


def progress(items: Sequence[PlanItem], unit: str, level: Level,
             activities: Iterable[Activity]) -> tuple[Progress, ...]:
    """The unit's progress on every item it owes."""
    owed = [item for item in items if item.applies(unit, level)]
    # Reports that differ in nothing an item looks at are judged once: a campaign month
    # of a busy unit is thousands of reports but a few dozen kinds of them.
    kinds: Counter[tuple[str, str, int, int | None, bool]] = Counter()
    for a in activities:
        if a.unit == unit:
            kinds[(a.activity_type, a.form, a.partners, a.households, a.published)] += a.count
    result = []
    for item in owed:
        done = reported = 0
        for (kind, form, partners, households, published), n in kinds.items():
            if item.counts(kind, form, partners):
                if published:
                    done += n * _amount(item, households)
                else:
                    reported += n * _amount(item, households)
        result.append(Progress(item, done, reported))
    return tuple(result)


def gaps_sentence(progresses: Sequence[Progress]) -> str:
    """"还差：禁毒展览1次、联合主题活动1次", or that every target is met."""
    gaps = [f"{p.item.label}{p.gap}{p.item.unit_word}" for p in progresses if p.gap]
    if gaps:
        return "还差：" + "、".join(gaps)
    if any(p.item.target is not None for p in progresses):
        return "各项目标均已完成"
    return "本单位没有数量目标"


# --------------------------------------------------------------------- delays


@dataclass(frozen=True)
class Story:
    """One report and what became of it, for the delay split."""

    unit: str
    ended: datetime                     # the activity's end
    received: datetime
    deadline: datetime
    published: datetime | None = None
    signoffs: tuple[tuple[str, datetime], ...] = ()   # (stage, signed at), final round


def unit_late(story: Story, report_hours: int) -> bool:
    """The unit reported more than ``report_hours`` after its activity ended."""
    return story.received - story.ended > timedelta(hours=report_hours)


def desk_late(story: Story, report_hours: int, until: datetime) -> bool:
    """Late (published after the deadline, or not out when ``until`` reached it) although
    the unit reported on time: the desk held it."""
    if unit_late(story, report_hours):
        return False
    if story.published is not None:
        return story.published > story.deadline
    return until >= story.deadline


def desk_stages(story: Story) -> list[tuple[str, timedelta]]:
    """How long each review stage held a published story, then the wait for the push."""
    if story.published is None:
        return []
    spans, since = [], story.received
    for stage, at in sorted(story.signoffs, key=lambda s: s[1]):
        spans.append((stage, max(timedelta(0), at - since)))
        since = at
    spans.append(("待推送", max(timedelta(0), story.published - since)))
    return spans
