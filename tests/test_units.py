"""The unit tree through the CLI: add, import from ledgers, the tree with its counts."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from tests.conftest import Workspace


def test_add_units_and_refuse_bad_ones_with_a_sentence(any_workspace: Workspace) -> None:
    ws = any_workspace
    ok = ws.run("units", "add", "望月湖社区", "--level", "社区", "--parent", "麓谷街道",
                "--email", "wangyuehu@xxxq.example.cn")
    assert ok.code == 0, ok.err
    cases = {
        ("望月湖社区", "community", "麓谷街道"): "already exists",
        ("新社区", "village", "麓谷街道"): "is not district, street, branch or community",
        ("孤儿社区", "community", "不存在街道"): "'不存在街道' is not a known unit",
        ("错层社区", "community", "XX新区"): "must be a street, but 'XX新区' is a district",
        ("无上级街道", "street", ""): "needs a parent (district)",
    }
    for (name, level, parent), message in cases.items():
        args = ["units", "add", name, "--level", level] + (["--parent", parent] if parent else [])
        refused = ws.run(*args)
        assert refused.code == 1 and message in refused.err, (name, refused.err)
    bad_mail = ws.run("units", "add", "邮箱社区", "--level", "community", "--parent", "麓谷街道",
                      "--email", "not-an-address")
    assert bad_mail.code == 1 and "not a valid email address" in bad_mail.err
    tree = ws.run("units", "--json").json()
    names = [u["name"] for u in tree]
    lugu = names.index("麓谷街道")
    assert "望月湖社区" in names[lugu:names.index("雷锋街道")]  # listed under its street
    added = next(u for u in tree if u["name"] == "望月湖社区")
    assert (added["level"], added["parent"], added["depth"]) == ("community", "麓谷街道", 2)


def test_import_csv_and_xlsx_keep_good_rows_and_name_bad_ones(workspace: Workspace,
                                                             tmp_path: Path) -> None:
    csv_path = tmp_path / "units.csv"
    csv_path.write_text("名称,级别,上级,邮箱\n咸嘉湖社区,社区,麓谷街道,xjh@xxxq.example.cn\n"
                        ",社区,麓谷街道,\n坪塘村,乡村,白箬铺镇,\n", encoding="utf-8-sig")
    result = workspace.run("units", "import", str(csv_path))
    assert result.code == 1
    assert "added 咸嘉湖社区" in result.out
    assert "units.csv, row 3: 名称: the unit name is empty" in result.err
    assert "units.csv, row 4: 级别: level '乡村'" in result.err
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["name", "level", "parent", "email"], ["快递行业分会", "branch", "XX新区", ""],
                ["金峰社区", "community", "金山桥街道", "jf@xxxq.example.cn"]):
        sheet.append(row)
    book.save(tmp_path / "units.xlsx")
    assert workspace.run("units", "import", str(tmp_path / "units.xlsx")).code == 0
    names = {u["name"]: u for u in workspace.run("units", "--json").json()}
    assert names["快递行业分会"]["level"] == "branch"
    assert names["金峰社区"]["parent"] == "金山桥街道"
    missing = workspace.run("units", "import", str(tmp_path / "nothing.csv"))
    assert missing.code == 1 and "nothing.csv" in missing.err
