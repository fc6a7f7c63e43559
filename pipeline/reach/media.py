"""Reported coverage (宣传报道): which outlet, at which level, carried a report.

Pure: ``MediaList`` is built from the bundled list (``media.toml`` beside this module),
the workspace's outlets (``settings.media``) and the outlets editors classified once
(``MediaOutlet`` rows); ``classify`` looks at one reported item, a link or a name.
A link is matched by its host (the longest listed domain it ends with), a name by the
longest outlet name or alias it contains. What matches nothing is "unknown": listed
for an editor to classify, under the link's host or the name as written.
"""

from __future__ import annotations

import json
import re
import tomllib
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import MEDIA_LEVELS, OutletSpec
from ..config.loader import read_outlets
from ..errors import ConfigError

BUNDLED = Path(__file__).with_name("media.toml")
COVERAGE_LEVELS = ("national", "provincial", "city")  # counted in the bulletin
_URL = re.compile(r"^https?://", re.I)
_QUOTES = re.compile(r"[《》<>“”\"'「」【】\s]")


@dataclass(frozen=True)
class Classified:
    item: str             # as reported
    key: str              # the link's host or the normalised name (what an editor classifies)
    outlet: str | None    # None: unknown
    level: str | None

    @property
    def known(self) -> bool:
        return self.outlet is not None

    @property
    def level_label(self) -> str:
        return MEDIA_LEVELS.get(self.level or "", "待归类")


def bundled_outlets() -> list[OutletSpec]:
    """The outlets shipped with the package.

    Raises:
        ConfigError: when the bundled list is broken (a packaging bug).
    """
    raw = tomllib.loads(BUNDLED.read_text(encoding="utf-8"))
    problems: list[str] = []
    outlets = read_outlets(raw.get("outlets", []), "media.toml (bundled): outlets", problems)
    if problems:
        raise ConfigError(problems, str(BUNDLED))
    return outlets


def host_of(link: str) -> str:
    host = (urllib.parse.urlsplit(link.strip()).hostname or "").lower()
    return host.removeprefix("www.")


def normalise(name: str) -> str:
    return _QUOTES.sub("", name)


class MediaList:
    """Outlets by domain and by name; later sources win over earlier ones."""

    def __init__(self, outlets: Iterable[OutletSpec]) -> None:
        self._domains: dict[str, OutletSpec] = {}
        self._names: dict[str, OutletSpec] = {}
        for outlet in outlets:
            for domain in outlet.domains:
                self._domains[domain] = outlet
            for name in (outlet.name, *outlet.aliases):
                self._names[normalise(name)] = outlet

    def classify(self, item: str) -> Classified:
        text = item.strip()
        if _URL.match(text):
            host = host_of(text)
            outlet = self._by_host(host)
            return Classified(text, host or text, *(_pair(outlet)))
        key = normalise(text)
        outlet = self._names.get(key) or self._by_containment(key)
        return Classified(text, key, *(_pair(outlet)))

    def _by_host(self, host: str) -> OutletSpec | None:
        if host in self._names:  # an editor classified this host by hand
            return self._names[host]
        found = [d for d in self._domains if host == d or host.endswith("." + d)]
        return self._domains[max(found, key=len)] if found else None

    def _by_containment(self, key: str) -> OutletSpec | None:
        # "湖南日报客户端" or "湖南日报7月1日第3版" name 湖南日报: the longest contained name wins
        found = [n for n in self._names if len(n) >= 2 and n in key]
        return self._names[max(found, key=len)] if found else None


def _pair(outlet: OutletSpec | None) -> tuple[str | None, str | None]:
    return (outlet.name, outlet.level) if outlet else (None, None)


def media_list(workspace: Sequence[OutletSpec], classified: Sequence[OutletSpec] = ()
               ) -> MediaList:
    """Bundled, then the workspace's list, then the editors' classifications."""
    return MediaList([*bundled_outlets(), *workspace, *classified])


def with_classified(workspace: Sequence[OutletSpec], rows: Iterable[tuple[str, str, str]]
                    ) -> MediaList:
    """The media list with the editors' classifications (``mediaoutlet`` rows: outlet,
    level, name as reported), read by the store or by the bulletin's lean start."""
    return media_list(workspace, [OutletSpec(outlet, level, (name,) if "." in name else (),
                                             (name,)) for outlet, level, name in rows])


def classify_report(media: MediaList, links_json: str) -> list[Classified]:
    """A report's items, each outlet counted once per report."""
    found: dict[str, Classified] = {}
    for item in json.loads(links_json or "[]"):
        result = media.classify(str(item))
        found.setdefault(result.outlet or f"?{result.key}", result)
    return list(found.values())
