"""jinja2 templates of outgoing mail: staff replies and acknowledgements.

Each kind of mail (``reply``, ``acknowledgement``) has three templates, looked up as
``<kind>/subject.txt``, ``<kind>/body.txt`` and ``<kind>/body.html`` in these folders, first hit wins:

1. the department's option ``templates_dir`` (``helpdesk department set NAME --templates-dir DIR``),
2. folders plugins add through ``helpdesk_register_template_folders``, in registration order
   (collected once per application: ``app.hooks.template_folders``, passed in here),
3. the built-in ``helpdesk_core/mail/templates/``.

A folder may override only some files. Autoescaping is on for ``.html`` templates only; text
templates get the values as they are. Unknown variables are errors (``StrictUndefined``) so a typo in
a custom template fails loudly instead of sending a mail with a hole in it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from helpdesk_core.errors import ConfigurationError

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
KINDS = ("reply", "acknowledgement", "password_reset", "sign_in_link", "invite")


@dataclass(frozen=True)
class RenderedMail:
    """The rendered parts of one outgoing mail."""

    subject: str
    text: str
    html: str


def template_folders(registered: Sequence[Path], templates_dir: str | None = None) -> list[Path]:
    """The template folders, highest priority first (see the module docs): the department's
    ``templates_dir``, then ``registered`` (the plugins' folders), then the built-in ones."""
    folders: list[Path] = []
    if templates_dir:
        folders.append(Path(str(templates_dir)).expanduser())
    folders.extend(registered)
    folders.append(BUILTIN_TEMPLATES)
    return folders


@lru_cache(maxsize=32)
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    # sandboxed: a department's templates are written by its admin, who must not reach Python
    # (``self.__init__.__globals__`` …) and so the server through them
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(list(folders)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False,
                                            default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def text_to_html(text: str) -> Markup:
    """Plain text as safe HTML paragraphs (escaped; blank lines separate paragraphs)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return Markup("\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs))


def render_mail(registered: Sequence[Path], templates_dir: str | None, kind: str,
                variables: dict[str, Any]) -> RenderedMail:
    """Render ``kind``'s subject, text and HTML templates with ``variables``, looked up in the
    folders of :func:`template_folders` (``templates_dir``: the department's option, if any;
    ``registered``: the plugins' folders).

    ``variables["body"]`` (if any) is also offered to the HTML template as ``body_html``.
    Raises ConfigurationError naming the template when one is missing or broken.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    folders = tuple(str(f) for f in template_folders(registered, templates_dir))
    env = _environment(folders)
    values = dict(variables)
    values.setdefault("body_html", text_to_html(str(values.get("body", ""))))
    out: dict[str, str] = {}
    for part in ("subject.txt", "body.txt", "body.html"):
        name = f"{kind}/{part}"
        try:
            out[part] = env.get_template(name).render(values)
        except jinja2.TemplateNotFound:
            raise ConfigurationError(f"Mail template {name!r} not found in {', '.join(folders)}: "
                                     "restore it or fix the department's templates_dir.") from None
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            line = getattr(exc, "lineno", None)
            raise ConfigurationError(f"Mail template {where}{f' line {line}' if line else ''} is broken "
                                     f"({type(exc).__name__}: {exc}): fix the template.") from exc
    subject = " ".join(out["subject.txt"].split())
    return RenderedMail(subject=subject, text=out["body.txt"].strip("\n") + "\n", html=out["body.html"])
