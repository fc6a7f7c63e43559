"""The campaign plan as the speech sets it (issue 10): the bundled plan table as data, each
item met exactly, missed by one and exceeded; any-of and partner items; households; the
config's sentences for a bad item."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import PlanItem, Settings, load_settings
from pipeline.domain import Level
from pipeline.errors import ConfigError
from pipeline.notify.campaign import Activity, gaps_sentence, progress

ROOT = Path(__file__).resolve().parent.parent

# The plan of ../shared/DESIGN.md: key -> (who, target, types, partner, measure, unit word).
PLAN = {
    "一": (("street",), "1", (), True, "activities", "次"),
    "二-1": (("street",), "1-2", ("film",), False, "activities", "场"),
    "二-2": (("street",), "2-3", ("lecture",), False, "activities", "场"),
    "二-3": (("street",), "1-2", ("exhibition",), False, "activities", "次"),
    "三": (("street", "branch"), ">=2", ("base_visit",), False, "activities", "场次"),
    "四": (("district",), "2-3", ("training",), False, "activities", "批次"),
    "五": (("street", "志愿者分会"), "1", ("volunteer",), False, "activities", "次"),
    "六": (("district",), "3-5", ("hardship_visit",), False, "households", "户"),
    "七": (("street",), "1", ("household_meeting", "parent_pledge", "quiz"), False,
           "activities", "次"),
    "八": (("district", "street", "branch", "community"), None, (), False, "activities", "次"),
}
# An owing unit per item, and a report that counts towards it.
OWER = {"street": ("麓谷街道", Level.STREET), "branch": ("物流行业分会", Level.BRANCH),
        "district": ("XX新区", Level.DISTRICT), "志愿者分会": ("志愿者分会", Level.BRANCH)}


@pytest.fixture(scope="module")
def bundled() -> Settings:
    return load_settings(ROOT / "config.toml")


def items(settings: Settings) -> dict[str, PlanItem]:
    assert settings.campaign is not None
    return {item.key: item for item in settings.campaign.items}


def test_the_bundled_district_is_the_district_of_the_speech(bundled: Settings) -> None:
    streets = [u.name for u in bundled.units if u.level == Level.STREET]
    assert streets == ["麓谷街道", "雷锋街道", "白马街道", "东方红街道", "白箬铺镇",
                       "黄金园街道", "金山桥街道"]
    branches = [u.name for u in bundled.units if u.level == Level.BRANCH]
    assert "志愿者分会" in branches and len(branches) >= 3
    for street in streets:       # a few communities or villages under every street
        assert sum(1 for u in bundled.units if u.parent == street) >= 2, street
    assert bundled.activity_type("学生家长承诺书") is not None
    assert (ROOT / "templates" / "parent_pledge.md.j2").is_file()
    assert (ROOT / "pipeline/skeleton/config.toml").read_text("utf-8") == \
        (ROOT / "config.toml").read_text("utf-8")


def test_the_plan_table_as_data(bundled: Settings) -> None:
    plan = items(bundled)
    assert list(plan) == list(PLAN)
    for key, (who, target, types, partner, measure, word) in PLAN.items():
        item = plan[key]
        assert (item.who, str(item.target) if item.target else None, item.types,
                item.partner, item.measure, item.unit_word) == \
            (who, target, types, partner, measure, word), key
    # No invented community targets: communities owe only (八), which has no number.
    owed = [i.key for i in plan.values() if i.applies("洋湖国际社区", Level.COMMUNITY)]
    assert owed == ["八"]


def _activity(item: PlanItem, unit: str, amount: int = 1) -> Activity:
    kind = item.types[0] if item.types else "lecture"
    households = amount if item.measure == "households" else None
    return Activity(unit, kind, "线下活动", partners=1 if item.partner else 0,
                    households=households, published=True)


@pytest.mark.parametrize("key", [k for k, v in PLAN.items() if v[1] is not None])
def test_each_item_exact_under_and_over(bundled: Settings, key: str) -> None:
    item = items(bundled)[key]
    assert item.target is not None
    unit, level = OWER[item.who[-1] if key == "五" else item.who[0]]
    low = item.target.low
    high = item.target.high if item.target.high is not None else low

    def measured(n: int) -> tuple[int, bool | None, bool, int]:
        if item.measure == "households":      # one visit with n households
            acts = [_activity(item, unit, n)] if n else []
        else:
            acts = [_activity(item, unit) for _ in range(n)]
        [p] = [p for p in progress([item], unit, level, acts)]
        return p.done, p.met, p.over, p.gap

    assert measured(low) == (low, True, False, 0)                       # exactly
    assert measured(low - 1) == (low - 1, False, False, 1)              # one under
    over = measured(high + 1)
    assert over[:2] == (high + 1, True) and over[2] == (item.target.high is not None)


def test_targets_count_published_stories_and_show_the_rest_beside(bundled: Settings) -> None:
    film = items(bundled)["二-1"]
    acts = [Activity("麓谷街道", "film", published=True),
            Activity("麓谷街道", "film", published=False),
            Activity("雷锋街道", "film", published=True)]
    [p] = progress([film], "麓谷街道", Level.STREET, acts)
    assert (p.done, p.reported, p.met) == (1, 1, True)
    [q] = progress([film], "白马街道", Level.STREET, acts)
    assert (q.done, q.reported, q.met, q.gap) == (0, 0, False, 1)


def test_any_of_several_types_or_forms(bundled: Settings) -> None:
    seven = items(bundled)["七"]
    for kind, form in (("household_meeting", "线下"), ("parent_pledge", "线下"),
                       ("quiz", "线上"), ("other", "禁毒屋场会"), ("other", "禁毒知识抢答")):
        [p] = progress([seven], "雷锋街道", Level.STREET,
                       [Activity("雷锋街道", kind, form, published=True)])
        assert p.met, (kind, form)
    [p] = progress([seven], "雷锋街道", Level.STREET,
                   [Activity("雷锋街道", "lecture", "讲座", published=True)])
    assert not p.met and gaps_sentence([p]) == "还差：屋场会/学生家长承诺书/禁毒知识抢答1次"


def test_the_joint_activity_needs_a_partner(bundled: Settings) -> None:
    joint = items(bundled)["一"]
    alone = Activity("白马街道", "lecture", "讲座", partners=0, published=True)
    together = Activity("白马街道", "lecture", "讲座", partners=2, published=True)
    assert not progress([joint], "白马街道", Level.STREET, [alone])[0].met
    assert progress([joint], "白马街道", Level.STREET, [together])[0].done == 1


def test_households_are_counted(bundled: Settings) -> None:
    visits = items(bundled)["六"]
    acts = [Activity("XX新区", "hardship_visit", households=2, published=True),
            Activity("XX新区", "hardship_visit", households=None, published=True),  # one
            Activity("XX新区", "hardship_visit", households=4, published=False)]
    [p] = progress([visits], "XX新区", Level.DISTRICT, acts)
    assert (p.done, p.reported, p.met, p.gap) == (3, 4, True, 0)
    assert not visits.applies("麓谷街道", Level.STREET)   # the association's, not a street's


def test_gaps_in_one_sentence(bundled: Settings) -> None:
    plan = items(bundled)
    owed = [i for i in plan.values() if i.applies("麓谷街道", Level.STREET)]
    acts = [Activity("麓谷街道", kind, published=True) for kind in
            ("film", "lecture", "lecture", "base_visit", "base_visit", "volunteer", "quiz")]
    sentence = gaps_sentence(progress(owed, "麓谷街道", Level.STREET, acts))
    assert sentence == "还差：联合主题活动1次、禁毒展览1次"


def test_a_bad_plan_item_is_named_with_its_key(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text("utf-8") + (
        '\n[[campaign.items]]\nkey = "九"\nlabel = "坏项目"\nwho = ["不存在街道"]\n'
        'target = "3-1"\nmeasure = "吨"\ntypes = ["跳舞"]\n')
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert "campaign.items[10].who: '不存在街道' is neither a level" in message
    assert "campaign.items[10].target: expected a target like 2" in message
    assert "campaign.items[10].measure: expected \"activities\" or \"households\"" in message
    assert "campaign.items[10].types: '跳舞' is not a configured activity type" in message
