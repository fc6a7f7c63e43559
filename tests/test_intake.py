"""Intake: files and form data to validated reports, and every bad input to a clear rejection."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image

from pipeline.config import Settings, parse_settings
from pipeline.domain import Report
from pipeline.errors import SubmissionError
from pipeline.intake import FIELD_LABELS, Rejection, read_files, validate_record

DATA = Path(__file__).parent / "data" / "submissions"
EXAMPLES = Path(__file__).parent.parent / "examples" / "reports"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 25, 12, 0, tzinfo=SHANGHAI)
# The example workspace's unit tree (config.toml): district, streets/towns, branches, communities.
UNITS = {"XX新区", "麓谷街道", "雷锋街道", "东方红街道", "白箬铺镇", "黄金园街道", "金山桥街道",
         "物流行业分会", "娱乐场所行业分会", "志愿者分会", "洋湖国际社区", "桐梓坡社区", "雷锋村",
         "东方红社区", "白箬铺村", "金山桥社区"}
GOOD = {"unit": "麓谷街道", "activity_type": "lecture", "title": "麓谷街道开展禁毒讲座",
        "time": "2026-06-20 09:00-11:30", "place": "党群服务中心", "form": "专题讲座",
        "body": "6月20日上午，麓谷街道开展禁毒知识讲座。"}


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return parse_settings({}, root=tmp_path)


def check(raw: Mapping[str, object], cfg: Settings, **kw: object) -> Report | list[Rejection]:
    args: dict[str, object] = {"settings": cfg, "units": UNITS, "now": NOW, "base_dir": None,
                               "source": "form", "row": None}
    args.update(kw)
    return validate_record(raw, **args)  # type: ignore[arg-type]


def ok(raw: Mapping[str, object], cfg: Settings, **kw: object) -> Report:
    result = check(raw, cfg, **kw)
    assert isinstance(result, Report), result
    return result


def rejected(raw: Mapping[str, object], cfg: Settings, **kw: object) -> list[Rejection]:
    result = check(raw, cfg, **kw)
    assert isinstance(result, list) and result, result
    return result


def only(rejections: list[Rejection]) -> Rejection:
    assert len(rejections) == 1, rejections
    return rejections[0]


def read(paths: list[Path], cfg: Settings, now: datetime = NOW) -> tuple[list[Report],
                                                                        list[Rejection]]:
    result = read_files(paths, cfg, UNITS, now)
    return result.reports, result.rejections


def make_jpeg(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), color).save(path, "JPEG")
    return path


def make_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (0, 90, 200)).save(path, "PNG")
    return path


# ---------------------------------------------------------------- file formats


def test_toml_report_with_photos_links_and_extra(cfg: Settings) -> None:
    path = DATA / "lecture.toml"
    reports, rejections = read([path], cfg)
    assert rejections == []
    (report,) = reports
    assert report.source == str(path) and report.row is None
    assert report.unit == "麓谷街道" and report.activity_type == "lecture"
    assert report.start == datetime(2026, 6, 20, 9, 0, tzinfo=SHANGHAI)
    assert report.end == datetime(2026, 6, 20, 11, 30, tzinfo=SHANGHAI)
    assert report.participants == 120
    assert report.links == ("https://mp.weixin.qq.com/s/lugu-0620", "湖南日报")
    assert [(p.original_name, p.kind) for p in report.photos] == [("one.jpg", "jpeg"),
                                                                  ("two.png", "png")]
    assert report.photos[0].path == (DATA / "photos" / "one.jpg").resolve()
    assert report.body.startswith("6月20日上午") and report.body.endswith("危害。")
    assert report.extra == {"organiser": "麓谷街道综治办"}
    assert report.contact == "王敏 0731-88880000"


def test_json_object_with_chinese_keys(cfg: Settings) -> None:
    (report,), rejections = read([DATA / "film.json"], cfg)
    assert rejections == []
    assert report.activity_type == "film" and report.participants == 300
    assert report.start == datetime(2026, 6, 18, 19, 30, tzinfo=SHANGHAI)
    assert report.end == datetime(2026, 6, 18, 21, 40, tzinfo=SHANGHAI)  # "21:40": same day
    assert report.links == ("红网", "长沙晚报")
    assert [p.original_name for p in report.photos] == ["one.jpg"]


def test_json_list_rows_are_one_based_and_independent(cfg: Settings) -> None:
    source = str(DATA / "batch.json")
    reports, rejections = read([DATA / "batch.json"], cfg)
    assert [(r.row, r.title) for r in reports] == [(1, "洋湖国际社区禁毒图片展")]
    assert reports[0].end == datetime(2026, 6, 16, 23, 59, 59, tzinfo=SHANGHAI)  # whole day
    assert [(r.source, r.row, r.field) for r in rejections] == [(source, 2, "title"),
                                                                (source, 3, "")]
    assert "missing or empty" in rejections[0].message
    assert "entry 3 is the number 42" in rejections[1].message


def test_markdown_yaml_front_matter_takes_body_from_text(cfg: Settings) -> None:
    (report,), rejections = read([DATA / "exhibition-yaml.md"], cfg)
    assert rejections == []
    assert report.activity_type == "household_meeting"
    assert report.body.startswith("6月15日下午") and "**屋场会**" in report.body
    assert report.start == datetime(2026, 6, 15, 15, 0, tzinfo=SHANGHAI)
    assert report.end == datetime(2026, 6, 15, 16, 30, tzinfo=SHANGHAI)
    assert report.links == ("湖南日报", "https://www.hunantoday.cn/article/0615")


def test_markdown_toml_front_matter_body_wins_and_text_is_kept(cfg: Settings) -> None:
    (report,), rejections = read([DATA / "visit-toml.md"], cfg)
    assert rejections == []
    assert report.body == "物流行业分会组织30余名从业人员参观禁毒教育基地。"
    assert report.start == datetime(2026, 6, 12, 14, 0, tzinfo=SHANGHAI)  # TOML datetime
    assert report.extra == {"markdown": "（以下为通讯员备注，不作为正文。）"}


def test_csv_utf8_bom_ledger_rows_match_excel(cfg: Settings) -> None:
    path = DATA / "ledger-utf8-bom.csv"
    reports, rejections = read([path], cfg)
    # row 1 is a title row, row 2 the header, row 4 is empty and skipped silently
    assert [(r.row, r.unit) for r in reports] == [(3, "东方红街道"), (5, "白箬铺镇")]
    first, second = reports
    assert first.body == "街道组织党员干部参观禁毒教育基地。\n参观后开展座谈。"
    assert (first.start, first.end) == (datetime(2026, 6, 10, 9, tzinfo=SHANGHAI),
                                        datetime(2026, 6, 10, 11, tzinfo=SHANGHAI))
    assert first.participants == 40 and first.extra == {}
    assert second.start == datetime(2026, 6, 11, 14, 30, tzinfo=SHANGHAI)  # 下午2点半
    assert second.extra == {} and second.notes == "已报区禁毒办"  # 备注: for the editors
    assert {(r.source, r.row, r.field) for r in rejections} == {
        (str(path), 6, "标题"), (str(path), 6, "活动日期")}
    messages = " ".join(r.message for r in rejections)
    assert "'2026/6/31'" in messages and "days 1 to 30" in messages


def test_csv_gb18030_ledger_is_detected(cfg: Settings) -> None:
    raw = (DATA / "ledger-gb18030.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    reports, rejections = read([DATA / "ledger-gb18030.csv"], cfg)
    assert rejections == []
    assert [(r.row, r.unit, r.title) for r in reports] == [
        (2, "金山桥街道", "金山桥街道社区影院放映禁毒影片"),
        (3, "雷锋村", "雷锋村开展禁毒知识进农家讲座")]


def test_csv_that_is_neither_utf8_nor_a_gb18030_ledger(cfg: Settings, tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"abc,def\n\xff\xfe\xfd,1\n")
    rejection = only(read([path], cfg)[1])
    assert (rejection.row, rejection.field) == (None, "")
    assert "not valid UTF-8" in rejection.message and "offset 8" in rejection.message
    assert "GB18030" in rejection.message


def test_csv_utf16_excel_unicode_text(cfg: Settings, tmp_path: Path) -> None:
    path = tmp_path / "unicode.csv"
    header = "单位\t活动类型\t标题\t活动时间\t活动地点\t活动方式\t活动内容\r\n"
    row = "雷锋街道\t禁毒讲座\t雷锋街道讲座\t2026-06-20 09:00\t会议室\t讲座\t讲座内容\r\n"
    path.write_bytes((header + row).encode("utf-16"))
    (report,), rejections = read([path], cfg)
    assert rejections == [] and report.row == 2 and report.unit == "雷锋街道"


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_xlsx_ledger_with_date_cells(cfg: Settings, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "台账.xlsx", [
        ["XX新区禁毒宣传月台账"],
        ["单位", "活动类型", "标题", "活动日期", "活动时间", "活动地点", "活动方式", "参与人数",
         "活动内容", "联系人"],
        ["黄金园街道", "禁毒展览", "黄金园街道禁毒展览进社区", datetime(2026, 6, 22), "9:00-17:00",
         "洋湖国际社区", "展板展览", 260, "展出禁毒展板20块。", 13800000000],
        [None, None, None, None, None, None, None, None, None, None],
        ["志愿者分会", "志愿服务", "志愿者街头禁毒宣传", datetime(2026, 6, 23), time(15, 0),
         "步行街", "街头宣传", 12.0, "志愿者发放传单。", None],
        ["志愿者分会", "志愿服务", "志愿者进校园", datetime(2026, 6, 24, 10, 0), None,
         "麓谷小学", "宣讲", 30, "志愿者进校园宣讲。", None],
    ])
    reports, rejections = read([path], cfg)
    assert rejections == []
    assert [r.row for r in reports] == [3, 5, 6]
    first, second, third = reports
    assert (first.start, first.end) == (datetime(2026, 6, 22, 9, tzinfo=SHANGHAI),
                                        datetime(2026, 6, 22, 17, tzinfo=SHANGHAI))
    assert first.participants == 260 and first.contact == "13800000000"
    assert second.start == datetime(2026, 6, 23, 15, tzinfo=SHANGHAI)  # date cell + time cell
    assert second.participants == 12
    assert third.start == datetime(2026, 6, 24, 10, tzinfo=SHANGHAI)   # date-time cell


def test_xlsx_bad_row_is_rejected_alone(cfg: Settings, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "ledger.xlsx", [
        ["单位", "活动类型", "标题", "活动时间", "活动地点", "活动方式", "活动内容"],
        ["麓谷街道", "禁毒讲座", "讲座", "2026-06-20 09:00", "会议室", "讲座", "内容"],
        ["不存在的单位", "禁毒讲座", "讲座二", "2026-06-21 09:00", "会议室", "讲座", "内容"],
        ["雷锋街道", "禁毒讲座", "讲座三", "2026-06-22 09:00", "会议室", "讲座", "内容"],
    ])
    reports, rejections = read([path], cfg)
    assert [r.row for r in reports] == [2, 4]
    rejection = only(rejections)
    assert (rejection.source, rejection.row, rejection.field) == (str(path), 3, "单位")
    assert "'不存在的单位'" in rejection.message


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("fake.xlsx", b"PK\x03\x04 not really a zip", "not a readable Excel workbook"),
    ("plain.xlsx", b"just text", "not a readable Excel workbook"),
    ("empty.csv", b"", "ledger is empty"),
    ("blank.csv", b"\xef\xbb\xbf,,,\r\n,,\r\n", "ledger is empty"),
    ("noheader.csv", "活动记录\n随便写的,没有表头\n".encode(), "no header row"),
    ("header-only.csv", "单位,活动类型,标题,活动时间,活动地点,活动方式,活动内容\n".encode(),
     "no activity rows"),
    ("missing-column.csv", "单位,活动类型,标题,活动时间,活动地点\n麓谷街道,禁毒讲座,讲座,"
     "2026-06-20,会议室\n".encode(), "no column for the required field(s) 活动方式, 活动内容"),
    ("twice.csv", "单位,填报单位,活动类型,标题,活动时间,活动地点,活动方式,活动内容\n".encode(),
     "'单位' and '填报单位' (row 1) both mean 单位"),
])
def test_malformed_ledger_is_one_file_rejection(cfg: Settings, tmp_path: Path, name: str,
                                                content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    rejection = only(read([path], cfg)[1])
    assert (rejection.source, rejection.row, rejection.field) == (str(path), None, "")
    assert expected in rejection.message


def test_empty_xlsx_workbook(cfg: Settings, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "empty.xlsx", [])
    assert "ledger is empty" in only(read([path], cfg)[1]).message


@pytest.mark.parametrize(("name", "expected"), [
    ("old.xls", "save it as .xlsx"), ("notes.docx", "files '.docx' cannot be read"),
    ("README", "without an extension"),
])
def test_unsupported_file_types(cfg: Settings, tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    rejection = only(read([path], cfg)[1])
    assert rejection.source == str(path) and expected in rejection.message


def test_missing_file_and_folder(cfg: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "reports.json"
    folder.mkdir()
    rejections = read([tmp_path / "nope.toml", folder], cfg)[1]
    assert [r.message for r in rejections] == ["the file was not found",
                                               "this is a folder, not a report file"]


def test_invalid_utf8_names_the_byte_offset(cfg: Settings) -> None:
    rejection = only(read([DATA / "bad-utf8.toml"], cfg)[1])
    assert (rejection.row, rejection.field) == (None, "")
    # 'unit = "麓谷街道"\ntitle = "' is 31 bytes in UTF-8
    assert "byte 0xFF at byte offset 31" in rejection.message


@pytest.mark.parametrize(("name", "expected"), [
    ("bad-syntax.json", "not valid JSON: line 1, column 34"),
    ("bad-no-front-matter.md", "no front matter"),
    ("bad-not-a-workbook.xlsx", "not a readable Excel workbook"),
    ("bad-no-header.csv", "no header row"),
])
def test_bad_sample_files(cfg: Settings, name: str, expected: str) -> None:
    rejection = only(read([DATA / name], cfg)[1])
    assert rejection.source == str(DATA / name) and expected in rejection.message


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.toml", 'title = "x\n', "not valid TOML"),
    ("a.json", '{"title": "a", "title": "b"}', "the key 'title' appears twice"),
    ("a.json", "[]", "holds an empty list"),
    ("a.json", '"just a string"', "expected one report"),
    ("a.md", "---\ntitle: [unclosed\n---\n", "front matter is not valid YAML"),
    ("a.md", "+++\ntitle = \n+++\n", "front matter is not valid TOML"),
    ("a.md", "---\n- a list\n---\n", "front matter holds a list"),
])
def test_broken_structured_files(cfg: Settings, tmp_path: Path, name: str, content: str,
                                 expected: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    rejection = only(read([path], cfg)[1])
    assert rejection.field == "" and expected in rejection.message


def test_nul_byte_in_a_file_is_rejected(cfg: Settings, tmp_path: Path) -> None:
    path = tmp_path / "nul.json"
    path.write_text(json.dumps({**GOOD, "title": "禁毒\u0000讲座"}), encoding="utf-8")
    rejection = only(read([path], cfg)[1])
    assert rejection.field == "title"
    assert "NUL character (U+0000) at position 3" in rejection.message


def test_typo_key_in_toml_is_rejected(cfg: Settings) -> None:
    rejections = read([DATA / "bad-typo.toml"], cfg)[1]
    assert rejections[0].field == "tilte"
    assert rejections[0].message == "unknown field 'tilte' — did you mean 'title'?"


def test_all_problems_of_one_report_are_listed(cfg: Settings) -> None:
    rejections = read([DATA / "bad-many.toml"], cfg)[1]
    assert [r.field for r in rejections] == ["unit", "activity_type", "title", "time",
                                             "links"]
    assert all(r.source == str(DATA / "bad-many.toml") and r.row is None for r in rejections)


def test_several_files_in_one_call(cfg: Settings) -> None:
    reports, rejections = read([DATA / "lecture.toml", DATA / "bad-typo.toml",
                                DATA / "film.json"], cfg)
    assert [r.activity_type for r in reports] == ["lecture", "film"]
    assert {r.source for r in rejections} == {str(DATA / "bad-typo.toml")}


# ---------------------------------------------------------------- field names


@pytest.mark.parametrize("key", ["标题（必填）", "标题：", " 标 题 ", "*标题", "Title",
                                 "活动标题(必填):", "title"])
def test_header_spellings(cfg: Settings, key: str) -> None:
    raw = {k: v for k, v in GOOD.items() if k != "title"} | {key: "禁毒讲座"}
    assert ok(raw, cfg).title == "禁毒讲座"


def test_unknown_keys_are_extra_in_ledgers_but_typos_in_strict_files(cfg: Settings) -> None:
    assert ok({**GOOD, "tilte": "x", "附件说明": "无"}, cfg).extra == {"tilte": "x",
                                                                    "附件说明": "无"}
    rejection = only(rejected({**GOOD, "Photo": "a.jpg"}, cfg, strict_keys=True))
    assert rejection.field == "Photo" and "did you mean 'photos'?" in rejection.message
    assert ok({**GOOD, "organiser": "综治办"}, cfg, strict_keys=True).extra == {
        "organiser": "综治办"}


def test_extra_values_must_be_plain(cfg: Settings) -> None:
    assert ok({**GOOD, "tags": ["a", "b"], "n": 3}, cfg).extra == {"tags": "a; b", "n": "3"}
    rejection = only(rejected({**GOOD, "meta": {"a": 1}}, cfg))
    assert rejection.field == "meta" and "nested data" in rejection.message


def test_same_field_twice(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "标题": "另一个标题"}, cfg))
    assert rejection.field == "标题"
    assert "'标题' and 'title' both give the 标题" in rejection.message


# ---------------------------------------------------------------- required fields


def test_each_missing_required_field_is_its_own_rejection(cfg: Settings) -> None:
    rejections = rejected({"participants": 3}, cfg, source="form.json", row=7)
    assert [r.field for r in rejections] == ["unit", "activity_type", "title", "time",
                                             "place", "form", "body"]
    assert all((r.source, r.row) == ("form.json", 7) for r in rejections)
    assert rejections[0].message == "the required field 'unit' is missing or empty"


def test_missing_fields_are_named_in_chinese_for_chinese_records(cfg: Settings) -> None:
    rejections = rejected({"单位": "麓谷街道"}, cfg)
    assert [r.field for r in rejections] == ["活动类型", "标题", "活动时间", "活动地点", "活动方式",
                                             "活动内容"]


@pytest.mark.parametrize("blank", ["", "   ", "\u3000\t\n", "\u200b\u200b", "\ufeff", None, []])
def test_blank_or_invisible_only_required_field_is_missing(cfg: Settings, blank: object) -> None:
    rejection = only(rejected({**GOOD, "title": blank}, cfg))
    assert rejection.field == "title" and "missing or empty" in rejection.message


@pytest.mark.parametrize(("field", "value"), [("title", 2026), ("body", None), ("place", ["a"]),
                                              ("form", True)])
def test_wrong_type_for_text(cfg: Settings, field: str, value: object) -> None:
    rejection = only(rejected({**GOOD, field: value}, cfg))
    assert rejection.field == field
    if value is None:
        assert "missing" in rejection.message
    else:
        assert rejection.message.startswith("expected text, got")


# ---------------------------------------------------------------- unit and activity type


def test_unknown_unit_suggests_close_names(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "unit": "麓谷街办"}, cfg))
    assert rejection.field == "unit"
    assert "unknown unit '麓谷街办'; did you mean '麓谷街道'?" in rejection.message


def test_unknown_unit_without_close_names_lists_examples(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "unit": "Acme"}, cfg))
    assert "unknown unit 'Acme'; it must be one of the 16 configured units" in rejection.message


def test_unit_with_stray_spaces_matches(cfg: Settings) -> None:
    assert ok({**GOOD, "unit": " 麓谷 街道\u200b"}, cfg).unit == "麓谷街道"


@pytest.mark.parametrize(("text", "key"), [("lecture", "lecture"), ("禁毒讲座", "lecture"),
                                           (" 屋场会 ", "household_meeting")])
def test_activity_type_by_key_or_label(cfg: Settings, text: str, key: str) -> None:
    assert ok({**GOOD, "activity_type": text}, cfg).activity_type == key


def test_unknown_activity_type_lists_labels(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "activity_type": "联欢会"}, cfg))
    assert rejection.field == "activity_type" and "'联欢会'" in rejection.message
    assert "禁毒讲座 (lecture)" in rejection.message
    assert "屋场会 (household_meeting)" in rejection.message


# ---------------------------------------------------------------- dates and times


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[arg-type,misc]


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-06-20 09:00", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026-06-20T09:00:00", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026/6/20 9:00", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026.6.20 9:05", at(2026, 6, 20, 9, 5), at(2026, 6, 20, 9, 5)),
    ("2026年6月20日 9:00", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026年6月20日上午9时", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026年6月20日（星期六）下午3点半", at(2026, 6, 20, 15, 30), at(2026, 6, 20, 15, 30)),
    ("2026年6月20日下午3时15分", at(2026, 6, 20, 15, 15), at(2026, 6, 20, 15, 15)),
    ("２０２６－０６－２０ ０９：００", at(2026, 6, 20, 9), at(2026, 6, 20, 9)),
    ("2026-06-20", at(2026, 6, 20), at(2026, 6, 20, 23, 59, 59)),
    ("2026年6月20日", at(2026, 6, 20), at(2026, 6, 20, 23, 59, 59)),
    ("2026-06-20 09:00-11:30", at(2026, 6, 20, 9), at(2026, 6, 20, 11, 30)),
    ("2026-06-20 09:00 - 11:30", at(2026, 6, 20, 9), at(2026, 6, 20, 11, 30)),
    ("2026-06-20 09:00~11:30", at(2026, 6, 20, 9), at(2026, 6, 20, 11, 30)),
    ("2026年6月20日 9:00—11:00", at(2026, 6, 20, 9), at(2026, 6, 20, 11)),
    ("2026-06-20 09:00 至 2026-06-21 17:00", at(2026, 6, 20, 9), at(2026, 6, 21, 17)),
    ("2026-06-18 到 2026-06-20", at(2026, 6, 18), at(2026, 6, 20, 23, 59, 59)),
])
def test_time_forms(cfg: Settings, text: str, start: datetime, end: datetime) -> None:
    report = ok({**GOOD, "time": text}, cfg)
    assert (report.start, report.end) == (start, end)


def test_time_with_zone_keeps_it(cfg: Settings) -> None:
    report = ok({**GOOD, "time": "2026-06-20T09:00-05:00"}, cfg)
    assert report.start.utcoffset() == timedelta(hours=-5)
    assert ok({**GOOD, "time": "2026-06-20T01:00:00Z"}, cfg).start == at(2026, 6, 20, 9)
    assert ok({**GOOD, "time": "2026-06-20 09:00+08:00"}, cfg).start == at(2026, 6, 20, 9)


def test_time_without_zone_is_read_in_the_configured_zone(tmp_path: Path) -> None:
    berlin = parse_settings({"account": {"timezone": "Europe/Berlin"}}, root=tmp_path)
    report = ok({**GOOD, "time": "2026-06-20 09:00"}, berlin)
    assert report.start == datetime(2026, 6, 20, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert report.start.utcoffset() == timedelta(hours=2)


def test_time_values_from_toml_yaml_and_forms(cfg: Settings) -> None:
    assert ok({**GOOD, "time": datetime(2026, 6, 20, 9)}, cfg).start == at(2026, 6, 20, 9)
    whole_day = ok({**GOOD, "time": date(2026, 6, 20)}, cfg)
    assert (whole_day.start, whole_day.end) == (at(2026, 6, 20), at(2026, 6, 20, 23, 59, 59))
    utc = datetime(2026, 6, 20, 1, tzinfo=ZoneInfo("UTC"))
    assert ok({**GOOD, "time": utc}, cfg).start == utc


def test_start_and_end_fields(cfg: Settings) -> None:
    raw = {k: v for k, v in GOOD.items() if k != "time"}
    report = ok({**raw, "start": "2026-06-20 09:00", "end": "11:30"}, cfg)
    assert report.end == at(2026, 6, 20, 11, 30)
    report = ok({**raw, "开始时间": "2026-06-19", "结束时间": "2026-06-20"}, cfg)
    assert (report.start, report.end) == (at(2026, 6, 19), at(2026, 6, 20, 23, 59, 59))
    assert ok({**raw, "start": "2026-06-20 09:00-10:00"}, cfg).end == at(2026, 6, 20, 10)


def test_date_field_supplies_the_day(cfg: Settings) -> None:
    raw = {k: v for k, v in GOOD.items() if k != "time"}
    assert ok({**raw, "活动日期": "2026-06-20"}, cfg).end == at(2026, 6, 20, 23, 59, 59)
    report = ok({**raw, "活动日期": "2026/6/20", "活动时间": "下午2点-4点"}, cfg)
    assert (report.start, report.end) == (at(2026, 6, 20, 14), at(2026, 6, 20, 16))
    rejection = only(rejected({**raw, "date": "2026-06-20", "time": "2026-06-21 09:00"}, cfg))
    assert rejection.field == "time" and "2026-06-20" in rejection.message
    assert ok({**raw, "date": "2026-06-20 09:00"}, cfg).start == at(2026, 6, 20, 9)  # alone
    rejection = only(rejected({**raw, "date": "2026-06-20 09:00", "time": "10:00"}, cfg))
    assert rejection.field == "date" and "must be a date alone" in rejection.message


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-13-01", "'2026-13-01' is not a valid date and time: there is no month 13"),
    ("2026-02-30", "'2026-02-30' is not a valid date and time: 2026-02 has days 1 to 28, not 30"),
    ("2026-06-20 25:00", "25:00:00 is not a time of day"),
    ("tomorrow", "cannot read 'tomorrow' as a date and time"),
    ("明天上午", "cannot read '明天上午' as a date and time"),
    ("1781234567", "'1781234567' looks like a timestamp number"),
    ("1781234567000", "'1781234567000' looks like a timestamp number"),
    (1781234567, "expected a date and time, got the number 1781234567"),
    (540, "got the number 540"),  # YAML reads an unquoted 9:00 as 540
    ("6月20日 9:00", "'6月20日 9:00' has no year"),
    ("06/20 9:00", "'06/20 9:00' has no year"),
    ("1999-06-20", "the year 1999 is not plausible"),
    ("9:00-11:00", "cannot read '9:00-11:00'"),
    ("2026-06-20 09:00+25:00", "+25:00 is not a time zone offset"),
    (time(9, 0), "a time without a date"),
])
def test_bad_times_quote_the_value_and_the_expected_form(cfg: Settings, value: object,
                                                         expected: str) -> None:
    rejection = only(rejected({**GOOD, "time": value}, cfg))
    assert rejection.field == "time"
    assert expected in rejection.message
    assert "2026-06-20 09:00" in rejection.message  # the expected form is shown


def test_end_before_start(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "time": "2026-06-20 11:00-09:00"}, cfg))
    assert rejection.field == "time"
    assert "ends at 2026-06-20 09:00+08:00, before it starts at 2026-06-20 11:00+08:00" \
        in rejection.message
    raw = {k: v for k, v in GOOD.items() if k != "time"}
    raw = {**raw, "开始时间": "2026-06-20 11:00", "结束时间": "2026-06-19"}
    rejection = only(rejected(raw, cfg))
    assert rejection.field == "结束时间" and "before it starts" in rejection.message


def test_time_and_start_together_is_ambiguous(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "start": "2026-06-20 09:00"}, cfg))
    assert rejection.field == "time" and "not both" in rejection.message


def test_missing_time_with_only_an_end(cfg: Settings) -> None:
    raw = {k: v for k, v in GOOD.items() if k != "time"}
    rejection = only(rejected({**raw, "end": "2026-06-20 11:00"}, cfg))
    assert rejection.field == "time" and "activity time is missing" in rejection.message


def test_future_activity_is_rejected_beyond_the_grace(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "time": "2026-06-25 12:30"}, cfg))
    assert rejection.field == "time"
    assert "starts at 2026-06-25 12:30+08:00, which is in the future" in rejection.message
    assert "reports are for activities that have happened" in rejection.message
    assert ok({**GOOD, "time": "2026-06-25 12:09"}, cfg)   # within 10 minutes' grace
    assert ok({**GOOD, "time": "2026-06-25"}, cfg)          # today, whole day


def test_old_activity_is_accepted(cfg: Settings) -> None:
    assert ok({**GOOD, "time": "2026-03-01 09:00"}, cfg).start == at(2026, 3, 1, 9)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 6, 25, 11, 59)),
       st.sampled_from(["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M",
                        "%Y-%m-%dT%H:%M:%S", "%Y年%m月%d日%H时%M分"]))
@hsettings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_written_times_read_back(cfg: Settings, when: datetime, form: str) -> None:
    text = when.strftime(form)
    expected = when.replace(second=when.second if "%S" in form else 0, microsecond=0)
    assert ok({**GOOD, "time": text}, cfg).start == expected.replace(tzinfo=SHANGHAI)


# ---------------------------------------------------------------- title, body, text


def test_title_is_stripped_and_one_line(cfg: Settings) -> None:
    assert ok({**GOOD, "title": "  禁毒\n讲座\u200b  "}, cfg).title == "禁毒 讲座"


@pytest.mark.parametrize(("char", "code"), [("\u202e", "U+202E"), ("\u2066", "U+2066"),
                                            ("\u200f", "U+200F"), ("\x1b", "U+001B"),
                                            ("\x85", "U+0085")])
def test_title_with_bidi_or_control_character(cfg: Settings, char: str, code: str) -> None:
    rejection = only(rejected({**GOOD, "title": f"禁毒{char}讲座"}, cfg))
    assert rejection.field == "title"
    assert f"control character {code}" in rejection.message and "position 3" in rejection.message


def test_title_length_is_counted_in_characters(cfg: Settings) -> None:
    assert ok({**GOOD, "title": "禁" * 32}, cfg).title == "禁" * 32
    assert ok({**GOOD, "title": "禁毒宣传👍🏽"}, cfg)   # emoji are accepted
    rejection = only(rejected({**GOOD, "title": "禁" * 33}, cfg))
    assert rejection.field == "title"
    assert "is 33 characters long; the limit is 32" in rejection.message


def test_body_limit(cfg: Settings) -> None:
    limit = cfg.limits.body_chars
    assert ok({**GOOD, "body": "字" * limit}, cfg)
    rejection = only(rejected({**GOOD, "body": "字" * (limit + 1)}, cfg))
    assert rejection.field == "body"
    assert f"{limit + 1} characters long; the limit is {limit}" in rejection.message


@pytest.mark.parametrize("field", ["title", "body", "place", "form", "contact", "unit"])
def test_nul_and_lone_surrogates_are_rejected_everywhere(cfg: Settings, field: str) -> None:
    rejection = only(rejected({**GOOD, field: "a\x00b"}, cfg))
    assert rejection.field == field and "NUL character (U+0000)" in rejection.message
    rejection = only(rejected({**GOOD, field: "a\ud800b"}, cfg))
    assert "U+D800" in rejection.message and "not a valid character" in rejection.message


def test_markup_and_template_syntax_are_kept_verbatim(cfg: Settings) -> None:
    body = "<script>alert(1)</script> {{ config }} {% include 'x' %} '; DROP TABLE reports; --"
    title = "<b>禁毒</b>{{ 7*7 }}"
    report = ok({**GOOD, "body": body, "title": title}, cfg)
    assert (report.body, report.title) == (body, title)


def test_escape_looking_text_is_not_decoded(cfg: Settings) -> None:
    assert ok({**GOOD, "title": "\\u4f5c\\u6587"}, cfg).title == "\\u4f5c\\u6587"


# ---------------------------------------------------------------- participants


@pytest.mark.parametrize(("value", "text", "number", "unit"), [
    ("120", "120", 120, "人"), ("约120人", "约120人", 120, "人"), ("120余人", "120余人", 120, "人"),
    ("1,200人次", "1,200人次", 1200, "人次"), (" 45 名", "45 名", 45, "人"),
    ("１２０", "１２０", 120, "人"), (0, "0", 0, "人"), (300, "300", 300, "人"),
    (12.0, "12", 12, "人"), ("约260人", "约260人", 260, "人"), ("800余人", "800余人", 800, "人"),
    ("志愿者18人，群众约200人", "志愿者18人，群众约200人", 218, "人"), ("4户", "4户", 4, "户"),
    ("家长约450人", "家长约450人", 450, "人"), ("很多", "很多", None, ""),
    ("100-200", "100-200", None, ""), ("-5", "-5", None, ""), (-1, "-1", None, ""),
    (1.5, "1.5", None, "")])
def test_participants_are_kept_as_written_with_a_count_where_one_reads(
        cfg: Settings, value: object, text: str, number: int | None, unit: str) -> None:
    report = ok({**GOOD, "participants": value}, cfg)
    assert (report.participants_text, report.participants, report.participants_unit) == (
        text, number, unit)


def test_hardship_visits_count_households_first(cfg: Settings) -> None:
    report = ok({**GOOD, "activity_type": "hardship_visit",
                 "participants": "工作人员6人，走访困难家庭4户"}, cfg)
    assert (report.participants, report.participants_unit) == (4, "户")


@pytest.mark.parametrize(("value", "shown"), [
    (True, "true/false"), ([3], "a list"), ("人" * 101, "101 characters")])
def test_participants_that_are_not_text_are_refused(cfg: Settings, value: object,
                                                     shown: str) -> None:
    rejection = only(rejected({**GOOD, "参与人数": value}, cfg))
    assert rejection.field == "参与人数" and shown in rejection.message


# ---------------------------------------------------------------- links


def test_links_from_text_and_lists(cfg: Settings) -> None:
    text = "https://mp.weixin.qq.com/s/abc\n湖南日报；长沙晚报;红网、https://www.rednet.cn/x?a=1"
    assert ok({**GOOD, "宣传报道": text}, cfg).links == (
        "https://mp.weixin.qq.com/s/abc", "湖南日报", "长沙晚报", "红网", "https://www.rednet.cn/x?a=1")
    assert ok({**GOOD, "links": ["湖南日报", "湖南日报", " "]}, cfg).links == ("湖南日报",)


@pytest.mark.parametrize(("link", "expected"), [
    ("javascript:alert(1)", "uses 'javascript:'"),
    ("JavaScript:alert(1)", "uses 'javascript:'"),
    ("java\tscript:alert(1)", "uses 'javascript:'"),
    ("file:///etc/passwd", "uses 'file:'"),
    ("data:text/html;base64,PHNjcmlwdD4=", "uses 'data:'"),
    ("ftp://example.com/a", "uses 'ftp:'"),
    ("http://", "is not a valid web address"),
    ("https://exa mple.com/", "is not a valid web address"),
    ("https://example.com:99999/", "is not a valid web address"),
])
def test_bad_links(cfg: Settings, link: str, expected: str) -> None:
    rejection = only(rejected({**GOOD, "links": [link]}, cfg))
    assert rejection.field == "links"
    assert expected in rejection.message and "https://" in rejection.message


def test_link_over_one_kilobyte(cfg: Settings) -> None:
    link = "https://example.com/" + "a" * 1005
    rejection = only(rejected({**GOOD, "links": [link]}, cfg))
    assert "is 1025 bytes long; the limit is 1 KB (1024 bytes)" in rejection.message
    assert ok({**GOOD, "links": [link[:-1]]}, cfg).links == (link[:-1],)


# ---------------------------------------------------------------- photos


def test_photos_resolved_hashed_and_collapsed(cfg: Settings, tmp_path: Path) -> None:
    jpeg = make_jpeg(tmp_path / "photos" / "现场1.jpg")
    make_png(tmp_path / "photos" / "b.png")
    shutil.copy(jpeg, tmp_path / "photos" / "copy.jpg")
    raw = {**GOOD, "图片": "photos/现场1.jpg、photos\\b.png;photos/copy.jpg\nphotos/现场1.jpg"}
    report = ok(raw, cfg, base_dir=tmp_path)
    assert [(p.original_name, p.kind) for p in report.photos] == [("现场1.jpg", "jpeg"),
                                                                  ("b.png", "png")]
    photo = report.photos[0]
    assert photo.path == jpeg.resolve() and photo.size == jpeg.stat().st_size
    assert len(photo.sha256) == 64


def photo_rejection(cfg: Settings, base: Path, name: str, **kw: object) -> Rejection:
    rejection = only(rejected({**GOOD, "photos": [name]}, cfg, base_dir=base, **kw))
    assert rejection.field == "photos"
    return rejection


@pytest.mark.parametrize(("name", "expected"), [
    ("/etc/passwd", "is absolute"),
    ("\\\\server\\share\\a.jpg", "is absolute"),
    ("../secret.jpg", "goes up with '..'"),
    ("photos/../../secret.jpg", "goes up with '..'"),
    ("..\\secret.jpg", "goes up with '..'"),
    ("C:\\Users\\a.jpg", "drive letter"),
    ("c:a.jpg", "drive letter"),
    ("%2e%2e/secret.jpg", "URL-encoded"),
    ("..%2fsecret.jpg", "URL-encoded"),
    ("photos%5c..%5c..%5csecret.jpg", "URL-encoded"),
    ("a.jpg\x00.png", "NUL"),
    ("https://example.com/a.jpg", "is a web address"),
    ("missing.jpg", "was not found"),
    ("x" * 300 + ".jpg", "cannot be read"),
])
def test_photo_paths_that_escape_or_do_not_exist(cfg: Settings, tmp_path: Path, name: str,
                                                 expected: str) -> None:
    rejection = photo_rejection(cfg, tmp_path, name)
    assert expected in rejection.message
    assert repr(name[:60] + ("…" if len(name) > 60 else "")) in rejection.message


def test_photo_symlink_outside_the_folder(cfg: Settings, tmp_path: Path) -> None:
    outside = make_jpeg(tmp_path / "outside" / "a.jpg")
    base = tmp_path / "report"
    base.mkdir()
    (base / "link.jpg").symlink_to(outside)
    (base / "dir").symlink_to(outside.parent, target_is_directory=True)
    for name in ("link.jpg", "dir/a.jpg"):
        assert "outside the report's folder" in photo_rejection(cfg, base, name).message
    (base / "inside.jpg").symlink_to(make_jpeg(base / "real.jpg"))
    assert ok({**GOOD, "photos": ["inside.jpg"]}, cfg, base_dir=base).photos[0].path == \
        (base / "real.jpg").resolve()


def gif_bytes() -> bytes:
    import io
    buffer = io.BytesIO()
    Image.new("P", (4, 4)).save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(("content", "expected"), [
    ((DATA / "photos" / "fake.jpg").read_bytes(), "is a PDF document"),
    (gif_bytes(), "is a GIF image"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "is a WebP image"),
    (b"\x00\x00\x00\x18ftypheic", "HEIC"),
    (b"hello world", "unknown type (it starts with the bytes 68 65 6C 6C 6F 20 77 6F)"),
    (b"", "is an empty file (0 bytes)"),
    (b"\xff\xd8\xff\xe0 truncated", "is a damaged JPEG image"),
])
def test_photo_content_types(cfg: Settings, tmp_path: Path, content: bytes,
                             expected: str) -> None:
    (tmp_path / "photo.jpg").write_bytes(content)
    rejection = photo_rejection(cfg, tmp_path, "photo.jpg")
    assert "'photo.jpg'" in rejection.message and expected in rejection.message


@pytest.mark.parametrize(("suffix", "hidden"), [
    (b"%PDF-1.4\n1 0 obj\n%%EOF", "%PDF-"), (b"<script>alert(1)</script>", "<script"),
    (b"PK\x05\x06" + b"\x00" * 18, "a ZIP archive")])
def test_polyglot_photo(cfg: Settings, tmp_path: Path, suffix: bytes, hidden: str) -> None:
    path = make_jpeg(tmp_path / "photo.jpg")
    path.write_bytes(path.read_bytes() + suffix)
    rejection = photo_rejection(cfg, tmp_path, "photo.jpg")
    assert "JPEG image that also contains" in rejection.message and hidden in rejection.message


def test_photo_size_and_count_limits(tmp_path: Path) -> None:
    small = parse_settings({"limits": {"photo_bytes": 600, "photos_per_report": 2}}, root=tmp_path)
    big = tmp_path / "big.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(big, "PNG")
    size = big.stat().st_size
    rejection = photo_rejection(small, tmp_path, "big.png")
    assert f"({size} bytes); the limit is" in rejection.message
    assert "(600 bytes)" in rejection.message
    names = [make_jpeg(tmp_path / f"{i}.jpg", (i * 40, 0, 0)).name for i in range(3)]
    rejection = only(rejected({**GOOD, "photos": names}, small, base_dir=tmp_path))
    assert "3 photos were given; the limit is 2 per report" in rejection.message


def test_photo_folder_is_not_a_file(cfg: Settings, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    assert "is a folder" in photo_rejection(cfg, tmp_path, "photos").message


def test_photos_need_a_base_folder(cfg: Settings) -> None:
    rejection = only(rejected({**GOOD, "photos": "a.jpg"}, cfg, base_dir=None))
    assert rejection.field == "photos" and "uploaded as files" in rejection.message


def test_photos_of_a_report_file_are_relative_to_its_folder(cfg: Settings, tmp_path: Path) -> None:
    make_jpeg(tmp_path / "sub" / "photos" / "a.jpg")
    report_file = tmp_path / "sub" / "r.json"
    report_file.write_text(json.dumps({**GOOD, "photos": ["photos/a.jpg"]}), encoding="utf-8")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)  # the path is given relative, as a user would type it
        (report,), _ = read([Path("sub/r.json")], cfg)
    finally:
        os.chdir(cwd)
    assert report.source == "sub/r.json"
    assert report.photos[0].path == (tmp_path / "sub" / "photos" / "a.jpg").resolve()


# ---------------------------------------------------------------- rejection shape


def test_rejection_reads_as_a_submission_error() -> None:
    rejection = Rejection("台账.xlsx", 5, "标题", "the required field '标题' is missing or empty")
    error = rejection.as_error()
    assert isinstance(error, SubmissionError) and (error.source, error.row) == ("台账.xlsx", 5)
    assert str(rejection) == "台账.xlsx, row 5: 标题: the required field '标题' is missing or empty"


def test_field_labels_cover_the_documented_fields() -> None:
    assert FIELD_LABELS["title"] == "标题" and FIELD_LABELS["links"] == "宣传报道"


# ---------------------------------------------------------------- properties

KEYS = [*FIELD_LABELS, *FIELD_LABELS.values(), "tilte", "备注", ""]
TEXTS = st.one_of(st.text(max_size=40), st.sampled_from([
    "2026-06-20 09:00-11:30", "2026年6月20日上午9时", "../x.jpg", "photo.jpg", "javascript:x",
    "约120人", "麓谷街道", "禁毒讲座", "\u202e", "\x00", "\ud800", "2026-02-30", "9:00"]))
VALUES = st.one_of(TEXTS, st.none(), st.integers(), st.floats(), st.booleans(),
                   st.lists(TEXTS, max_size=3), st.datetimes(), st.dates(), st.times(),
                   st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))


@pytest.fixture(scope="module")
def prop_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("prop")
    make_jpeg(root / "photo.jpg")
    return parse_settings({}, root=root), root


def assert_outcome(result: object) -> None:
    if isinstance(result, list):
        assert result and all(isinstance(r, Rejection) and r.message for r in result)
    else:
        assert isinstance(result, Report) and result.start <= result.end


@given(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)),
                       st.text(max_size=60), max_size=14))
@hsettings(max_examples=300, deadline=None)
def test_validate_record_never_raises_on_text(prop_env: tuple[Settings, Path],
                                              raw: dict[str, str]) -> None:
    cfg, root = prop_env
    assert_outcome(validate_record(raw, settings=cfg, units=UNITS, now=NOW, base_dir=root,
                                   source="p", row=None))


@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6), st.booleans())
@hsettings(max_examples=300, deadline=None)
def test_validate_record_never_raises_on_a_mostly_good_record(
        prop_env: tuple[Settings, Path], changes: dict[str, object], strict: bool) -> None:
    cfg, root = prop_env
    raw = {**GOOD, "photos": "photo.jpg", **changes}
    assert_outcome(validate_record(raw, settings=cfg, units=UNITS, now=NOW, base_dir=root,
                                   source="p", row=3, strict_keys=strict))


SEEDS = sorted(p for p in DATA.iterdir() if p.is_file())


@st.composite
def mangled_file(draw: st.DrawFn) -> bytes:
    """A sample file with a few bytes replaced, or plain random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = draw(st.sampled_from(SEEDS)).read_bytes()
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.binary(max_size=6)) + data[at + draw(st.integers(0, 6)):]


@given(mangled_file(), st.sampled_from([".toml", ".json", ".md", ".csv", ".xlsx"]))
@hsettings(max_examples=200, deadline=None)
def test_read_files_never_raises_on_mangled_files(prop_env: tuple[Settings, Path], data: bytes,
                                                  suffix: str) -> None:
    cfg, root = prop_env
    path = root / f"mangled{suffix}"
    path.write_bytes(data)
    result = read_files([path], cfg, UNITS, NOW)
    assert all(r.message and r.source == str(path) for r in result.rejections)
    assert all(isinstance(r, Report) for r in result.reports)


# ---------------------------------------------------------------- bundled examples


def test_bundled_examples_are_valid_except_the_bad_one(cfg: Settings) -> None:
    files = sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and "photos" not in p.parts)
    reports, rejections = read(files, cfg, now=datetime(2026, 6, 30, 20, 0, tzinfo=SHANGHAI))
    assert len(reports) >= 12
    assert {r.unit for r in reports} <= UNITS
    assert all(datetime(2026, 6, 1, tzinfo=SHANGHAI) <= r.start < datetime(2026, 7, 1,
               tzinfo=SHANGHAI) for r in reports)
    assert sum(len(r.photos) for r in reports) >= 3
    assert {Path(r.source).parent.name for r in rejections} == {"bad"}
    messages = " ".join(r.message for r in rejections)
    assert "unknown unit" in messages and "in the future" in messages
