"""HTML helpers for inbound mail: a safe-to-render sanitiser and an HTML → plain-text converter.

* :func:`sanitize_html` cleans a mail's HTML body with ``nh3``: no scripts, no event handlers, no
  ``javascript:`` URLs, no remote resources loaded automatically (``<img src="http…">`` becomes
  ``<img data-remote-src="http…">`` so the UI can offer "load remote images"), while ``cid:``
  images keep ``src="cid:…"`` for the UI to resolve against the message's inline attachments.
* :func:`html_to_text` renders HTML as readable plain text using :mod:`html.parser`: block
  elements and ``<br>`` give newlines, list items get a ``- `` bullet, ``<blockquote>`` content is
  prefixed with ``> `` (so quoted history can be stripped like in plain text mails), script and
  style contents are dropped and entities decoded.

Both functions never raise on any input string.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

__all__ = ["sanitize_html", "html_to_text"]

#: tags kept by the sanitiser (nh3's safe default set)
_ALLOWED_TAGS: frozenset[str] = frozenset(nh3.ALLOWED_TAGS) | {"font"}
#: tags removed together with their content
_CLEAN_CONTENT_TAGS: frozenset[str] = frozenset({"script", "style", "title", "head"})
_GENERIC_ATTRIBUTES: frozenset[str] = frozenset(
    {"style", "title", "dir", "lang", "align", "valign", "width", "height", "bgcolor"}
)
_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "tel", "cid"})
#: CSS properties kept in ``style`` attributes (nothing that can load a URL)
_STYLE_PROPERTIES: frozenset[str] = frozenset(
    {
        "color", "background-color", "font-weight", "font-style", "font-size", "font-family",
        "text-decoration", "text-align", "vertical-align", "white-space", "line-height",
        "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
        "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
        "border", "border-top", "border-bottom", "border-left", "border-right",
        "border-color", "border-style", "border-width", "border-collapse",
        "width", "height", "max-width", "display",
    }
)  # fmt: skip

# nh3 serialises every attribute as name="value" with '"' escaped, so this tokenisation is exact.
_IMG_TAG_RE = re.compile(r'<img(?:\s+[^\s=>/]+(?:="[^"]*")?)*\s*/?>', re.IGNORECASE)
_REMOTE_SRC_RE = re.compile(r'(\s)src="((?:https?:)?//[^"]*)"', re.IGNORECASE)


def _attributes() -> dict[str, set[str]]:
    attrs: dict[str, set[str]] = {tag: set(values) for tag, values in nh3.ALLOWED_ATTRIBUTES.items()}
    attrs.setdefault("img", set()).update({"src", "alt", "width", "height", "title"})
    attrs.setdefault("font", set()).update({"color", "face", "size"})
    attrs.setdefault("td", set()).update({"bgcolor", "valign"})
    attrs["*"] = set(_GENERIC_ATTRIBUTES)
    return attrs


def _rewrite_img(match: re.Match[str]) -> str:
    return _REMOTE_SRC_RE.sub(r'\1data-remote-src="\2"', match.group(0))


def sanitize_html(html: str) -> str:
    """Return ``html`` made safe to render inside the help desk UI.

    Scripts/styles are removed with their content, event-handler attributes and ``javascript:``
    (or any non http/https/mailto/tel/cid) URLs are dropped, inline ``style`` keeps only harmless
    properties, links get ``rel="noopener noreferrer"``. Remote images are not loaded: their
    ``src`` is renamed ``data-remote-src``. ``cid:`` image references are kept. Never raises;
    returns ``""`` if the input cannot be sanitised.
    """
    if not isinstance(html, str) or not html:
        return ""
    try:
        cleaned = nh3.clean(
            html,
            tags=set(_ALLOWED_TAGS),
            clean_content_tags=set(_CLEAN_CONTENT_TAGS),
            attributes=_attributes(),
            url_schemes=set(_URL_SCHEMES),
            filter_style_properties=set(_STYLE_PROPERTIES),
            strip_comments=True,
            link_rel="noopener noreferrer",
        )
    except Exception:  # nh3 rejects e.g. lone surrogates
        try:
            return sanitize_html(html.encode("utf-8", "replace").decode("utf-8"))
        except Exception:  # pragma: no cover - defensive
            return ""
    if "<img" in cleaned:
        cleaned = _IMG_TAG_RE.sub(_rewrite_img, cleaned)
    return cleaned


# --------------------------------------------------------------------------- html → text

_BLOCK_TAGS: frozenset[str] = frozenset(
    {
        "p", "div", "section", "article", "header", "footer", "aside", "nav", "main", "address",
        "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dt", "dd", "table", "tr",
        "form", "fieldset", "pre", "figure", "figcaption", "center", "hr", "caption",
    }
)  # fmt: skip
_SKIP_TAGS: frozenset[str] = frozenset({"script", "style", "head", "title", "noscript", "template"})
_WS_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")
_TRAILING_SPACES_RE = re.compile(r"[ \t]+\n")


class _TextExtractor(HTMLParser):
    """Collects text lines from HTML; see :func:`html_to_text`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.quote_depth = 0
        self.pending_href: list[str | None] = []

    # -- helpers
    def _flush(self) -> None:
        text = "".join(self.current)
        self.current = []
        if self.pre_depth:
            pieces = text.split("\n")
        else:
            pieces = [_WS_RE.sub(" ", text).strip()]
        prefix = "> " * self.quote_depth
        for piece in pieces:
            self.lines.append((prefix + piece).rstrip() if piece or not prefix else prefix.rstrip())

    def _newline(self) -> None:
        if self.current:
            self._flush()

    def _blank_line(self) -> None:
        if self.current:
            self._flush()
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            self._flush() if self.current else self.lines.append("> " * self.quote_depth)
        elif tag == "li":
            self._newline()
            self.current.append("- ")
        elif tag == "blockquote":
            self._blank_line()
            self.quote_depth += 1
        elif tag in ("td", "th"):
            if self.current:
                self.current.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.current.append(f"[{alt}]")
        elif tag == "a":
            self.pending_href.append(dict(attrs).get("href"))
        elif tag in _BLOCK_TAGS:
            if tag == "pre":
                self._newline()
                self.pre_depth += 1
            elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
                self._blank_line()
            else:
                self._newline()
            if tag == "hr":
                self.lines.append("-" * 20)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "blockquote":
            self._blank_line()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "a":
            href = self.pending_href.pop() if self.pending_href else None
            text = "".join(self.current)
            if href and href.startswith(("http://", "https://")) and href not in text:
                self.current.append(f" <{href}>")
        elif tag in _BLOCK_TAGS or tag == "li":
            if tag == "pre":
                self._newline()
                self.pre_depth = max(0, self.pre_depth - 1)
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
                self._blank_line()
            else:
                self._newline()

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data)

    def text(self) -> str:
        if self.current:
            self._flush()
        out = "\n".join(self.lines)
        out = _TRAILING_SPACES_RE.sub("\n", out)
        return _MANY_NEWLINES_RE.sub("\n\n", out).strip()


def html_to_text(html: str) -> str:
    """Convert an HTML document or fragment into readable plain text.

    Paragraphs, headings, divs, table rows, ``<br>`` and list items start new lines (list items
    get a ``- `` bullet); whitespace inside text is collapsed except in ``<pre>``; links whose
    text differs from the URL are written ``text <url>``; images show their ``alt`` text;
    ``<blockquote>`` contents are prefixed ``> ``; ``script``/``style``/``head`` are dropped and
    character references decoded. Never raises: on a parser failure, returns what was collected.
    """
    if not isinstance(html, str) or not html:
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient, but stay defensive
        pass
    try:
        return parser.text()
    except Exception:  # pragma: no cover - defensive
        return ""
