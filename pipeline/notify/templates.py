"""Email templates: ``templates/email/*.j2`` rendered with Jinja, CSS inlined for mail clients.

The workspace's own ``templates/email/`` comes first, so the administrator can
edit the wording; the bundled copy (``pipeline/skeleton/templates/email/``)
fills in any template a workspace lacks, so an older workspace keeps working.
HTML templates (``*.html.j2``) are autoescaped; text and Markdown ones are not.
Only files in those folders are ever compiled: names, titles and notes that
people typed are passed in as values, never as template source.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import css_inline
import jinja2

from ..errors import NotifyError

BUNDLED = Path(__file__).resolve().parent.parent / "skeleton" / "templates"


@functools.lru_cache(maxsize=8)
def _environment(folder: Path) -> jinja2.Environment:
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder),
                                  jinja2.FileSystemLoader(BUNDLED)])
    return jinja2.Environment(
        loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=True, default=False))


@functools.lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # Many mail clients drop <style>; inline styles are what survives.
    return css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False,
                                 load_remote_stylesheets=False)


def render_template(folder: Path, name: str, context: Mapping[str, Any]) -> str:
    """Render ``email/<name>`` from the workspace templates (or the bundled ones).

    Raises:
        NotifyError: naming the template and line when it is missing or fails.
    """
    env = _environment(folder.resolve())
    path = f"email/{name}"
    try:
        text = env.get_template(path).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise NotifyError.coded("email.template_syntax", name=exc.name or path,
                                line=exc.lineno, detail=exc.message) from exc
    except jinja2.TemplateNotFound as exc:
        raise NotifyError.coded("email.template_missing", name=path,
                                folder=str(folder)) from exc
    except Exception as exc:
        line = _failing_line(exc)
        if line is None:
            raise NotifyError.coded("email.template_failed", name=path, detail=str(exc)) from exc
        raise NotifyError.coded("email.template_failed_at", name=path, line=line,
                                detail=str(exc)) from exc
    return text


def render_html(folder: Path, name: str, context: Mapping[str, Any]) -> str:
    """Render an HTML email template and move its CSS into style attributes.

    Raises:
        NotifyError: when the template fails or its CSS cannot be inlined.
    """
    html = render_template(folder, name, context)
    try:
        return str(_inliner().inline(html))
    except ValueError as exc:
        raise NotifyError.coded("email.template_css", name=name, detail=str(exc)) from exc


def _failing_line(exc: BaseException) -> int | None:
    # Jinja rewrites tracebacks so that template frames carry the template file and line.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return frame.lineno
    return None
