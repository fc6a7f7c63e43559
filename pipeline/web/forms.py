"""The reporters' form (and the API's report body): fields, uploads, validation.

Uploaded photos are written under generated names into a temporary folder and
handed to ``intake.validate_record`` as file paths inside it, exactly as a
report file's photos are; the client's file name is never used as a path.
Intake's English rejections come back as Chinese messages per form field.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from starlette.datastructures import FormData, UploadFile

from ..config import Limits, Settings
from ..domain import Report
from ..intake import validate_record

CHUNK = 256 * 1024


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str                 # text, select, datetime, number, textarea
    required: bool = False
    hint: str = ""
    maxlength: int | None = None


def form_fields(settings: Settings) -> list[FormField]:
    limits = settings.limits
    return [
        FormField("activity_type", "活动类型", "select", True),
        FormField("title", "标题", "text", True, f"最多 {limits.title_chars} 个字",
                  limits.title_chars),
        FormField("start", "开始时间", "datetime", True),
        FormField("end", "结束时间", "datetime", False, "不填则与开始时间相同"),
        FormField("place", "活动地点", "text", True, "", 200),
        FormField("form", "活动方式", "text", True, "如：线下活动、线上直播、入户走访", 100),
        FormField("participants", "参与人数", "text", False,
                  "照实填写，如：约260人、800余人次、志愿者18人，群众约200人、4户", 100),
        FormField("body", "活动内容", "textarea", True,
                  f"写清做了什么、效果如何，最多 {limits.body_chars} 字", limits.body_chars),
        FormField("links", "宣传报道", "textarea", False,
                  "每行一条：报道网址（https://…）或媒体名称"),
        FormField("partners", "合作单位", "text", False,
                  "联合开展活动的社区、学校、企业等，多个用顿号分隔；没有可不填", 300),
        FormField("contact", "联系人及电话", "text", False, "仅供编辑联系，不会发布", 100),
        FormField("notes", "给编辑的备注", "textarea", False, "仅供编辑参考，不会发布", 1000),
    ]


TEXT_FIELDS = ("activity_type", "title", "start", "end", "place", "form", "participants",
               "body", "links", "partners", "contact", "notes")
# Intake names the field it refuses; these are the form fields they belong to.
_FIELD_OF = {"time": "start", "date": "start", "unit": "", "": ""}


@dataclass
class FormCheck:
    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    report: Report | None = None

    def add(self, name: str, message: str) -> None:
        messages = self.errors.setdefault(name, [])
        if message not in messages:
            messages.append(message)


def form_values(form: FormData | Mapping[str, object]) -> dict[str, str]:
    """The text fields as typed (for validation and for showing the form again)."""
    values = {}
    for name in TEXT_FIELDS:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    return values


def _new_name(folder: Path) -> Path:
    return folder / f"{secrets.token_hex(10)}.img"


async def save_uploads(files: Iterable[object], folder: Path, limits: Limits,
                       check: FormCheck) -> list[str]:
    """Stream uploaded photos into ``folder`` under generated names; returns the names."""
    names: list[str] = []
    uploads = [f for f in files if isinstance(f, UploadFile) and f.filename]
    if len(uploads) > limits.photos_per_report:
        check.add("photos", f"选择了 {len(uploads)} 张图片，每篇最多 "
                  f"{limits.photos_per_report} 张，请挑选最好的")
        return names
    for number, upload in enumerate(uploads, start=1):
        target = _new_name(folder)
        size = 0
        with target.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limits.photo_bytes:
                    break
                out.write(chunk)
        if size > limits.photo_bytes:
            target.unlink()
            check.add("photos", f"第 {number} 张图片超过 {limits.photo_bytes / 2**20:g} MB，"
                      "请压缩后再上传")
            continue
        names.append(target.name)
    return names


def save_encoded(photos: Iterable[str], folder: Path, limits: Limits,
                 check: FormCheck) -> list[str]:
    """The API's base64 photos, written like uploads."""
    names = []
    for number, text in enumerate(photos, start=1):
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            check.add("photos", f"第 {number} 张图片不是有效的 base64 编码")
            continue
        if len(data) > limits.photo_bytes:
            check.add("photos", f"第 {number} 张图片超过 {limits.photo_bytes / 2**20:g} MB")
            continue
        target = _new_name(folder)
        target.write_bytes(data)
        names.append(target.name)
    return names


def validate(check: FormCheck, photos: list[str], unit: str, settings: Settings,
             now: datetime, folder: Path, source: str, *, strict_keys: bool = False
             ) -> FormCheck:
    """Run intake's checks on the form; fills ``check.report`` or ``check.errors``.

    ``strict_keys``: refuse unknown keys that look like misspelt fields (the API)."""
    raw: dict[str, object] = {k: v for k, v in check.values.items() if v.strip()}
    raw["unit"] = unit  # a link only ever reports for its own unit
    if photos:
        raw["photos"] = photos
    outcome = validate_record(raw, settings=settings, units={unit}, now=now, base_dir=folder,
                              source=source, row=None, strict_keys=strict_keys)
    if isinstance(outcome, Report):
        if not check.errors:
            check.report = outcome
        return check
    for rejection in outcome:
        name = _FIELD_OF.get(rejection.field, rejection.field)
        check.add(name, rejection.text("zh_CN"))
    return check
