"""The weekly bulletin as an Excel workbook (the office forwards it): rankings per group,
progress per plan item, the daily regime and the desk's review times."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from ..config import Settings

BOLD = Font(bold=True)


def bulletin_xlsx(data: Any, settings: Settings) -> bytes:
    """``data`` is a ``BulletinData``; the workbook's bytes (pure)."""
    from .bulletin import bulletin_json  # the same figures as --json

    facts = bulletin_json(data, settings)
    book = Workbook()
    ranking = book.active
    assert ranking is not None
    ranking.title = "排名"
    _rows(ranking, ["级别", "所属街道", "名次", "单位", "得分", "报送", "发布", "单位迟报",
                    "编辑部延误", "超期未发", "达标项"],
          [[_LEVELS.get(g["level"], g["level"]), g["parent"] or "", u["rank"], u["unit"],
            u["score"], u["reported"], u["published"], u["late_unit"], u["late_desk"],
            u["missed"], f"{sum(1 for t in u['targets'] if t['met'])}/"
                         f"{sum(1 for t in u['targets'] if t['target'] is not None)}"]
           for g in facts["groups"] for u in sorted(g["units"], key=lambda u: u["rank"])])
    ranking.append([])
    ranking.append([facts["formula"]])
    progress = book.create_sheet("目标进度")
    _rows(progress, ["单位", "项目", "目标", "已发布", "已报送未发布", "达标"],
          [[u["unit"], t["item"], f"{t['target']}{t['unit']}" if t["target"] else "不设数量",
            t["done"], t["reported"], {True: "是", False: "否", None: "—"}[t["met"]]]
           for g in facts["groups"] for u in g["units"] for t in u["targets"]])
    days = book.create_sheet("日报制")
    _rows(days, ["日期", "已推送", "条数", "断更", "部分推送"],
          [[d["date"], "是" if d["pushed"] else "否", d["articles"],
            "是" if d["break"] else "", "是" if d["partial"] else ""] for d in facts["days"]])
    desk = book.create_sheet("编辑部时效")
    _rows(desk, ["环节", "稿件数", "平均用时（小时）"],
          [[s["stage"], s["stories"], s["hours"]] for s in facts["district"]["desk"]["stages"]])
    desk.append(["编辑部原因超期发布", facts["district"]["desk"]["late"]])
    desk.append(["编辑部原因超期未发", facts["district"]["desk"]["missed"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_LEVELS = {"district": "区级", "street": "街道/镇", "branch": "行业分会", "community": "社区/村"}


def _rows(sheet: Any, header: list[str], rows: list[list[Any]]) -> None:
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = BOLD
    for row in rows:
        sheet.append(row)
    for column, title in zip("ABCDEFGHIJK", header, strict=False):
        sheet.column_dimensions[column].width = max(10, 2 * len(title) + 4)
