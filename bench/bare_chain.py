"""The bare chain, as a whole process: the libraries ``pipeline submit`` is built on,
and nothing else, over the same report files.

For each JSON report: read it, render its activity template (plain Jinja, same
template files), convert the Markdown (one ``markdown.Markdown`` reused with
``reset()``, same extensions), render the article frame page, inline its CSS with
one reused ``css_inline.CSSInliner``, and write the Markdown and the HTML into
``OUT/<n>/``. No validation, no database, no sanitising, no proofreading.

``bench_intake.py`` runs it next to ``pipeline submit`` on the same files and
prints the ratio. Run alone: python bench/bare_chain.py TEMPLATES OUT FILE...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import css_inline
import jinja2
import markdown
from markupsafe import Markup

TYPES = {"film": "film.md.j2", "lecture": "lecture.md.j2", "exhibition": "exhibition.md.j2",
         "base_visit": "base_visit.md.j2", "training": "training.md.j2",
         "volunteer": "volunteer.md.j2", "hardship_visit": "hardship_visit.md.j2",
         "household_meeting": "household_meeting.md.j2", "quiz": "quiz.md.j2",
         "other": "other.md.j2"}


def main(argv: list[str]) -> int:
    templates, out, files = Path(argv[0]), Path(argv[1]), argv[2:]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["period"] = lambda start, end, timed=True: start.split(" ")[0]
    md = markdown.Markdown(extensions=["attr_list", "tables", "sane_lists", "nl2br"])
    inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
    frame = env.get_template("article_frame.html.j2")
    for n, name in enumerate(files):
        report = json.loads(Path(name).read_text(encoding="utf-8"))
        start, _, end = report["time"].rpartition("-")
        text = env.get_template(TYPES[report["activity_type"]]).render(
            report | {"start": start, "end": end, "timed": True, "lead": True,
                      "place_names_unit": False, "photos": [], "extra": {}})
        md.reset()
        html = inliner.inline(frame.render(content=Markup(
            md.convert(text)), references=report.get("links", [])))
        folder = out / str(n)
        folder.mkdir(parents=True)
        (folder / "article.md").write_text(text, encoding="utf-8")
        (folder / "article.html").write_text(html, encoding="utf-8")
    print(f"{len(files)} articles written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
