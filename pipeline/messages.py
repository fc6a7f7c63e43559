"""The error vocabulary: every error a person can see is a code with parameters,
defined once here; the words come from gettext catalogues built with Babel.

``pipeline/locale/<lang>/LC_MESSAGES/pipeline.po`` holds the Chinese (``zh_CN``) and
English (``en``) text of every code; ``make`` and the package build compile them to
``.mo`` (``python -m pipeline.messages compile``). Pages, emails, the phone form, the
bulletin and the API's ``message`` field speak Chinese; the CLI follows ``LANG``
(Chinese for ``zh_*``, English otherwise). A test extracts the codes and checks that
both catalogues translate every one.
"""

from __future__ import annotations

import gettext
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

LOCALE = Path(__file__).parent / "locale"
DOMAIN = "pipeline"
LANGUAGES = ("zh_CN", "en")


def N_(code: str) -> str:
    """Marks a code for extraction (the catalogue's msgid); returns it unchanged."""
    return code


# Every code the product can show, with the parameters its text uses.
CODES: dict[str, tuple[str, ...]] = {
    N_("store.unavailable"): ("detail",),
    N_("store.read_only"): ("database",),
    N_("files.folder_unwritable"): ("folder", "reason"),
    N_("draft.not_found"): ("id",),
    N_("push.day_taken"): ("date",),
    N_("auth.password_short"): ("length", "minimum"),
    N_("auth.password_repeated"): (),
    N_("auth.password_common"): (),
    N_("auth.no_user"): ("name",),
    N_("http.payload_too_large"): ("limit",),
    N_("http.bad_json"): (),
    N_("http.json_too_complex"): ("limit",),
    N_("http.service_unavailable"): (),
    N_("schedule.lock_lost"): ("holder",),
}


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    compiled = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if compiled.exists():
        with compiled.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    # an editable install that was never built: read the .po itself (Babel is installed)
    from babel.messages.pofile import read_po

    translations = gettext.NullTranslations()
    source = compiled.with_suffix(".po")
    if source.exists():
        with source.open("rb") as handle:
            catalog = read_po(handle)
        table = {str(m.id): str(m.string) for m in catalog if m.id and m.string}
        translations.gettext = lambda text: table.get(text, text)  # type: ignore[method-assign,assignment]
    return translations


def cli_language(environ: Any = None) -> str:
    """The CLI's language from the locale variables: Chinese for zh_*, else English."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    return "en"


def render(code: str, language: str = "zh_CN", **params: Any) -> str:
    """The sentence for ``code`` in ``language`` with its parameters filled in."""
    template = _catalogue(language).gettext(code)
    if template == code:  # no translation: never show a bare code to a person
        template = _catalogue("en").gettext(code)
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def compile_catalogues() -> list[Path]:
    """``.po`` -> ``.mo`` for every language (run by ``make`` and the package build)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for language in LANGUAGES:
        source = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        target = source.with_suffix(".mo")
        with target.open("wb") as out:
            write_mo(out, catalog)
        written.append(target)
    return written


if __name__ == "__main__":  # python -m pipeline.messages compile
    if sys.argv[1:] == ["compile"]:
        for path in compile_catalogues():
            print(f"compiled {path}")
