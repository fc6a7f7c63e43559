"""Links (宣传报道) and photos (图片) of a report: parsed, checked, photos hashed."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import unicodedata
import urllib.parse
import warnings
from collections.abc import Mapping
from pathlib import Path

from ..config import Limits
from ..domain import Photo
from ..errors import SubmissionError
from .record import Invalid, Record, bad_char, describe, quote, tidy

_LINK_SPLIT = re.compile(r"[\n\r;；、]+")
_PHOTO_SPLIT = re.compile(r"[\n\r;；、,，]+")


def _items(rec: Record, name: str, separators: re.Pattern[str]) -> list[str] | None:
    """A list field as distinct, cleaned strings; None when rejected."""
    value = rec.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        parts = separators.split(value)
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        parts = [str(v) for v in value]
    else:
        rec.reject(rec.key(name), "intake.not_text_list", got=describe(value))
        return None
    items: list[str] = []
    for part in parts:
        problem = bad_char(part)
        if problem:
            rec.reject(rec.key(name), "intake.bad_text", value=quote(part), problem=problem)
            return None
        if (text := tidy(part, False)) and text not in items:
            items.append(text)
    return items


_URL_START = re.compile(r"[a-z][a-z0-9+.\-]*://")
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:", "file:", "blob:")
_MAX_LINK_BYTES = 1024


_PARTNER_SPLIT = re.compile(r"[\n\r;；、,，]+")
_MAX_PARTNER_CHARS = 100


def read_partners(rec: Record) -> tuple[str, ...] | None:
    """合作单位: the communities, schools, enterprises or other units the activity was held
    with (the plan's joint theme activity needs at least one)."""
    items = _items(rec, "partners", _PARTNER_SPLIT)
    if items is None:
        return None
    long = [p for p in items if len(p) > _MAX_PARTNER_CHARS]
    for item in long:
        rec.reject(rec.key("partners"), "intake.partner_too_long", value=quote(item, 40),
                   size=len(item), limit=_MAX_PARTNER_CHARS)
    return None if long else tuple(items)


def read_links(rec: Record) -> tuple[str, ...] | None:
    items = _items(rec, "links", _LINK_SPLIT)
    if items is None:
        return None
    problems = [p for p in map(_link_problem, items) if p]
    for problem in problems:
        rec.refuse(rec.key("links"), problem)
    return None if problems else tuple(items)


def _link_problem(item: str) -> Invalid | None:
    size = len(item.encode("utf-8", "surrogatepass"))
    if size > _MAX_LINK_BYTES:
        return Invalid("link.too_long", value=quote(item), size=size, limit=_MAX_LINK_BYTES)
    # browsers ignore spaces and controls inside a scheme ("java script:"), so we do too
    compact = re.sub(r"[\x00-\x20\x7f]", "", item).lower()
    if not (_URL_START.match(compact) or compact.startswith(_SCRIPT_SCHEMES)):
        return None  # an outlet name such as 湖南日报
    scheme = compact.split(":", 1)[0]
    if scheme not in ("http", "https"):
        return Invalid("link.scheme", value=quote(item), scheme=scheme)
    try:
        parts = urllib.parse.urlsplit(item)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or not parts.hostname or re.search(r"\s", item):
        return Invalid("link.invalid", value=quote(item))
    return None


def read_photos(rec: Record, base_dir: Path | None, limits: Limits) -> tuple[Photo, ...] | None:
    names = _items(rec, "photos", _PHOTO_SPLIT)
    if not names:
        return None if names is None else ()
    key = rec.key("photos")
    if base_dir is None:
        rec.reject(key, "photo.paths_here")
        return None
    root = base_dir.resolve()
    targets: dict[Path, str] = {}
    for name in names:
        try:
            targets.setdefault(_photo_path(name, root), name)
        except Invalid as exc:
            rec.refuse(key, exc)
    if len(targets) > limits.photos_per_report:
        rec.reject(key, "photo.too_many", count=len(targets), limit=limits.photos_per_report)
        return None
    return _load_photos(rec, key, targets, limits)


def _load_photos(rec: Record, key: str, targets: Mapping[Path, str],
                 limits: Limits) -> tuple[Photo, ...]:
    photos: dict[str, Photo] = {}
    for target, name in targets.items():
        try:
            photo = _photo(name, target, limits)
        except Invalid as exc:
            rec.refuse(key, exc)
        else:
            photos.setdefault(photo.sha256, photo)  # the same picture twice counts once
    return tuple(photos.values())


def _photo_path(name: str, root: Path) -> Path:
    """Resolve a photo name inside the resolved folder ``root``, refusing every way out."""
    q = quote(name)
    decoded = urllib.parse.unquote(name)
    if "\x00" in decoded:
        raise Invalid("photo.nul_name", name=q)
    if decoded != name and _escapes(decoded):
        raise Invalid("photo.encoded_name", name=q)
    if _URL_START.match(name.lower()):
        raise Invalid("photo.web_address", name=q)
    if reason := _escapes(name):
        raise Invalid("photo.bad_path", name=q, reason=reason)
    try:
        target = (root / name.replace("\\", "/")).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise Invalid("photo.unresolvable", name=q, reason=str(exc)) from exc
    if not target.is_relative_to(root):
        raise Invalid("photo.outside", name=q)
    return target


def _escapes(name: str) -> str | None:
    posix = name.replace("\\", "/")
    if re.match(r"[A-Za-z]:", posix):
        return "starts with a drive letter"
    if posix.startswith("/"):
        return "is absolute"
    if ".." in posix.split("/"):
        return "goes up with '..' out of the report's folder"
    return None


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"),
    (b"%PDF-", "a PDF document"), (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"BM", "a BMP image"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/Excel file)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
)
# What a disguised ("polyglot") image carries: readers of that format find it anywhere.
_HIDDEN = re.compile(rb"%PDF-|<script|<html|<\?php", re.IGNORECASE)


def _sniff(data: bytes) -> str:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[4:8] == b"ftyp":
        return "a HEIC photo or a video (a phone format)"
    return f"a file of unknown type (it starts with the bytes {data[:8].hex(' ').upper()})"


def check_photo(target: Path, limits: Limits) -> Photo:
    """One uploaded photo checked like a report's (type from its content, size, damage,
    hidden files).

    Raises:
        SubmissionError: the photo breaks a rule; the message says which.
    """
    try:
        return _photo(target.name, target, limits)
    except Invalid as exc:
        raise SubmissionError.rule(exc.code, exc.params, field="photos") from exc


def _photo(name: str, target: Path, limits: Limits) -> Photo:
    q = quote(name)
    data = _photo_bytes(q, target, limits)
    kind = _sniff(data)
    if kind not in ("jpeg", "png"):
        raise Invalid("photo.not_image", name=q, kind=kind)
    hidden = _HIDDEN.search(data)
    if hidden or b"PK\x05\x06" in data[-65_600:]:
        what = hidden.group().decode("ascii", "replace") if hidden else "a ZIP archive"
        raise Invalid("photo.disguised", name=q, kind=kind.upper(), what=repr(what))
    damage, (width, height) = _damage(data)
    if damage:
        raise Invalid("photo.damaged", name=q, kind=kind.upper(), damage=damage)
    if width * height > limits.photo_pixels:
        # decoding and resizing it would take gigabytes and seconds: refused before that
        raise Invalid("photo.pixels", name=q, width=width, height=height,
                      megapixels=f"{width * height / 1e6:.1f}",
                      limit=f"{limits.photo_pixels / 1e6:g}")
    return Photo(path=target, original_name=_clean_name(name, target), kind=kind,
                 size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _photo_bytes(q: str, target: Path, limits: Limits) -> bytes:
    try:
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise Invalid("photo.not_file", name=q)
        if info.st_size == 0:
            raise Invalid("photo.empty", name=q)
        if info.st_size > limits.photo_bytes:
            raise Invalid("photo.too_big", name=q, mb=f"{info.st_size / 2**20:.1f}",
                          bytes=info.st_size, limit_mb=f"{limits.photo_bytes / 2**20:g}",
                          limit=limits.photo_bytes)
        return target.read_bytes()
    except FileNotFoundError:
        raise Invalid("photo.not_found", name=q) from None
    except OSError as exc:
        raise Invalid("photo.unreadable", name=q, reason=str(exc.strerror)) from exc


def _damage(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """What is wrong with the image's structure (None: nothing), and its size in pixels
    (read from the header; Pillow's decompression-bomb guard stays on)."""
    from PIL import Image  # Pillow loads only for reports with photos

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                size = image.size
                image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        return str(exc) or type(exc).__name__, (0, 0)
    return None, size


def _clean_name(name: str, target: Path) -> str:
    """The client's file name as metadata only: last part, no controls, at most 100 chars."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(base) > 100:
        suffix = Path(base).suffix[:10]
        base = base[: 100 - len(suffix)] + suffix
    return base or target.name
