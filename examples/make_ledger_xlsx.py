"""Write ``reports/ledger.xlsx``, the example Excel ledger (台账), as a unit would fill it in.

Run from anywhere: ``.venv/bin/python examples/make_ledger_xlsx.py``. The output is
committed; rerun this only to change the example. Dates are real Excel date cells
(one with a time of day, one date with the time in its own column), as people type them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

HERE = Path(__file__).resolve().parent
HEADERS = ["填报单位", "活动类型", "标题", "活动日期", "活动时间", "活动地点", "活动方式",
           "参与人数", "活动内容", "宣传报道", "联系人"]
ROWS: list[list[object]] = [
    ["黄金园街道", "禁毒展览", "黄金园街道禁毒展览进社区", datetime(2026, 6, 15), "9:00-17:00",
     "洋湖国际社区邻里中心广场", "展板展览", 260,
     "6月15日，黄金园街道在洋湖国际社区邻里中心广场举办禁毒展览，展出禁毒展板20块，"
     "吸引居民约260人次驻足观看。\n街道禁毒专干现场讲解展板内容，并发放宣传资料。",
     "XX新区发布", "钱进 0731-88001010"],
    ["金山桥社区", "屋场会", "金山桥社区在小区凉亭开起禁毒屋场会", datetime(2026, 6, 21),
     "上午9点-10点半", "金山桥社区枫林小区凉亭", "屋场会", 35,
     "6月21日上午，金山桥社区在枫林小区凉亭召开禁毒屋场会，35名居民参加。\n"
     "社区书记和民警与居民面对面交流，解答了居民关心的禁毒问题。",
     "", "冯芳 0731-88001111"],
    ["娱乐场所行业分会", "知识竞答", "娱乐场所从业人员禁毒知识竞赛", datetime(2026, 6, 24, 14, 0),
     None, "XX新区文体中心多功能厅", "知识竞赛", 120,
     "6月24日下午，娱乐场所行业分会举办从业人员禁毒知识竞赛，12家娱乐场所的120名员工参加。\n"
     "竞赛以赛促学，进一步增强了从业人员识毒、防毒、拒毒意识。",
     "https://mp.weixin.qq.com/s/XXxq-ent-20260624", "褚明 0731-88001212"],
]


def build() -> Workbook:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "6月台账"
    sheet.append(HEADERS)
    for row in ROWS:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for cells in sheet.iter_rows(min_row=2):
        when = cells[3].value
        has_time = isinstance(when, datetime) and when.hour != 0
        cells[3].number_format = "yyyy/m/d h:mm" if has_time else "yyyy/m/d"
        cells[8].alignment = Alignment(wrap_text=True, vertical="top")
    for column, width in zip("ABCDEFGHIJK", (14, 12, 30, 14, 14, 24, 12, 10, 60, 24, 20),
                             strict=True):
        sheet.column_dimensions[column].width = width
    # fixed document dates, so rerunning the script does not change the file needlessly
    book.properties.created = book.properties.modified = datetime(2026, 6, 25, 18, 0)
    return book


if __name__ == "__main__":
    target = HERE / "reports" / "ledger.xlsx"
    build().save(target)
    print(f"wrote {target}")
