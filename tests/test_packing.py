"""The push packer (issue 10): a story that can still be on time tonight is never left
out for one that is late anyway; checked on the issue's case and by brute force."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.push.plan import Candidate, pack

TZ = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 6, 20, 20, 0, tzinfo=TZ)
NEXT = AT + timedelta(days=1)


def _c(i: int, deadline: datetime, rank: int | None = None) -> Candidate:
    return Candidate(i, f"稿件{i}", "麓谷街道", "lecture", deadline, rank)


def _late(chosen_ids: set[int], cands: list[Candidate]) -> int:
    return sum(1 for c in cands if (AT > c.deadline if c.id in chosen_ids
                                    else NEXT > c.deadline))


def test_eight_overdue_and_one_due_tonight_the_due_one_goes_out() -> None:
    overdue = [_c(i, AT - timedelta(days=i)) for i in range(1, 9)]
    tonight = _c(99, AT + timedelta(hours=4))           # midnight: late tomorrow
    chosen, left = pack([*overdue, tonight], 8, AT, NEXT)
    assert 99 in {a.candidate.id for a in chosen}
    assert len(chosen) == 8 and len(left) == 1
    # the overdue left out is the newest one (oldest first), and it says why
    assert left[0].candidate.id == 1 and left[0].late
    assert "already overdue" in left[0].reason and "(8)" in left[0].reason


def test_lead_after_due_tonight_before_overdue_and_first_in_order() -> None:
    lead = _c(50, AT + timedelta(days=3), rank=1)
    overdue = [_c(i, AT - timedelta(days=i)) for i in range(1, 4)]
    tonight = [_c(60, AT + timedelta(hours=3))]
    chosen, left = pack([*overdue, *tonight, lead], 2, AT, NEXT)
    assert [a.candidate.id for a in chosen] == [50, 60]  # the lead heads the push
    assert [a.candidate.id for a in left] == [3, 2, 1]   # overdue, oldest first
    chosen, left = pack([*overdue, *tonight, lead], 3, AT, NEXT)
    assert {a.candidate.id for a in chosen} == {50, 60, 3}


def test_rest_by_deadline_and_the_reason_for_a_story_still_on_time() -> None:
    cands = [_c(i, AT + timedelta(days=2 + i)) for i in range(1, 4)]
    chosen, left = pack(cands, 2, AT, NEXT)
    assert [a.candidate.id for a in chosen] == [1, 2]
    assert not left[0].late and "still on time at the next push" in left[0].reason


def test_packer_never_makes_more_late_stories_than_the_best_choice() -> None:
    rng = random.Random(20260626)
    for _ in range(400):
        n = rng.randint(0, 8)
        limit = rng.randint(1, 5)
        cands = [_c(i, AT + timedelta(hours=rng.randint(-72, 72)),
                    rng.choice([None, None, 1, 2, 3])) for i in range(1, n + 1)]
        chosen, left = pack(cands, limit, AT, NEXT)
        assert len(chosen) == min(limit, n) and len(chosen) + len(left) == n
        ours = sum(a.late for a in chosen) + sum(a.late for a in left)
        assert ours == _late({a.candidate.id for a in chosen}, cands)
        best = min(_late({c.id for c in combo}, cands)
                   for combo in itertools.combinations(cands, min(limit, n)))
        assert ours == best, (cands, limit)


def test_every_reason_has_its_chinese_sentence_on_the_desk() -> None:
    from pipeline.messages import text_of

    cands = [_c(1, AT + timedelta(hours=2)), _c(2, AT + timedelta(hours=3)),
             _c(3, AT - timedelta(days=1)), _c(4, AT + timedelta(days=3))]
    _, left = pack(cands, 1, AT, NEXT)
    texts = [text_of(a.reason) for a in left]
    assert [a.reason.code for a in left] == [  # type: ignore[attr-defined]
        "push.left_turns_late", "push.left_overdue", "push.left_on_time"]
    assert texts == ["本次推送已满（1篇），都是期限更早的稿件；本稿下次推送时将超期",
                     "本稿已超期；本次推送已满（1篇），优先今晚仍可按期的稿件、头条和更早超期的稿件",
                     "下次推送时仍在期限内；本次推送已满（1篇），优先期限更早或已超期的稿件"]
