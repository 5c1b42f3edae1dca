"""HTML helpers for inbound mail: a safe-to-render sanitiser and an HTML → plain-text converter.

* :func:`sanitize_html` cleans a mail's HTML body with ``nh3`` so that showing it makes the browser
  fetch nothing and run nothing (see its docstring for what survives).
* :func:`html_to_text` renders HTML as readable plain text using :mod:`html.parser`: block
  elements and ``<br>`` give newlines, list items get a ``- `` bullet, ``<blockquote>`` content is
  prefixed with ``> `` (so quoted history can be stripped like in plain text mails), script and
  style contents are dropped and entities decoded.

Both functions never raise on any input string.

URLs are judged the way a browser reads them (WHATWG URL parsing), not as written: leading and
trailing spaces and control characters are ignored, tabs and newlines anywhere are removed,
backslashes count as slashes, ``http:host`` and ``http:/host`` mean ``http://host``, ``//host``
and ``\\host`` are remote, and everything else without a scheme is relative to *our* page (a
same-origin request such as ``/admin/tickets/1/close``). The value written into the output is the
URL as judged, so the browser sees exactly what was checked.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import nh3

__all__ = ["sanitize_html", "html_to_text", "allow_remote_images", "REMOTE_SRC_ATTRIBUTE"]

#: where the URL of a remote image (or background, poster) goes; a browser never loads it
REMOTE_SRC_ATTRIBUTE = "data-remote-src"
#: tags kept by the sanitiser (nh3's safe default set)
_ALLOWED_TAGS: frozenset[str] = frozenset(nh3.ALLOWED_TAGS) | {"font"}
#: tags removed together with their content
_CLEAN_CONTENT_TAGS: frozenset[str] = frozenset({"script", "style", "title", "head"})
#: attributes that make a browser load their URL when the element is shown
_MEDIA_URL_ATTRIBUTES: frozenset[str] = frozenset({"src", "srcset", "background", "poster", "lowsrc", "dynsrc"})
#: other URL-bearing attributes: ``href`` is judged on links, the rest always dropped
_OTHER_URL_ATTRIBUTES: frozenset[str] = frozenset(
    {"href", "cite", "longdesc", "usemap", "action", "formaction", "data", "codebase", "ping", "xlink:href"})
_GENERIC_ATTRIBUTES: frozenset[str] = frozenset(
    {"style", "title", "dir", "lang", "align", "valign", "width", "height", "bgcolor"}
)
_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "cid", "data"})
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
#: what in a declaration could load something (``url(``, ``image-set(``, ``@import``, IE's
#: ``expression``/``behavior``) or hide it (escapes, comments)
_CSS_FETCH_RE = re.compile(r"url|image|@import|expression|behavio|binding|\\|/\*", re.IGNORECASE)
_CSS_QUOTES_RE = re.compile(r"[\"']")

# What the browser's URL parser ignores or reads differently (see the module docstring).
_URL_TRIM = "".join(chr(c) for c in range(0x21))
_URL_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
_WEB_URL_RE = re.compile(r"^(https?):/*(.*)$", re.IGNORECASE | re.DOTALL)
_AUTHORITY_RE = re.compile(r"^([\w.~%!$&'()*+,;=:\[\]-]+)([/?#].*)?$", re.DOTALL)
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7f) if chr(c) not in '"<>\\^`{|}') + "%"
_DATA_IMAGE_RE = re.compile(r"^data:image/(?:png|jpeg|gif|webp)(?:;[\w=.+-]+)*,", re.IGNORECASE)
_MAILTO_RE = re.compile(r"^mailto:(.+)$", re.IGNORECASE | re.DOTALL)

# Our marker for "move this attribute to data-remote-src", put in front of the URL by the attribute
# filter and turned into the attribute by _move_remote(). No kept value can start with it: the
# filter returns only cid:, data:image/ and http(s) URLs, each as it built them.
_REMOTE_MARK = "helpdesk-remote:"
# nh3 serialises every attribute as name="value" with '"' escaped, and '<' in text as '&lt;', so this
# tokenisation of its output is exact.
_TAG_RE = re.compile(r'<[a-zA-Z][^\s/>]*(?:\s+[^\s=>/]+(?:="[^"]*")?)*\s*/?>')
_MARKED_ATTR_RE = re.compile(rf'\s[^\s=>/]+="{re.escape(_REMOTE_MARK)}([^"]*)"')


def _attributes() -> dict[str, set[str]]:
    attrs: dict[str, set[str]] = {tag: set(values) for tag, values in nh3.ALLOWED_ATTRIBUTES.items()}
    attrs.setdefault("img", set()).update({"src", "srcset", "lowsrc", "dynsrc", "alt", "width", "height", "title"})
    attrs.setdefault("font", set()).update({"color", "face", "size"})
    for tag in ("table", "tr", "td", "th"):
        attrs.setdefault(tag, set()).update({"background", "bgcolor", "valign"})
    attrs.setdefault("a", set()).update({"href"})
    attrs["*"] = set(_GENERIC_ATTRIBUTES)
    return attrs


def _browser_url(value: str) -> str:
    """``value`` as a browser's URL parser reads it: trimmed, without tabs/newlines, ``\\`` as ``/``."""
    return _URL_TAB_NEWLINE_RE.sub("", value.strip(_URL_TRIM)).replace("\\", "/")


def _web_url(value: str) -> str | None:
    """The absolute http(s) URL a browser would request for ``value``, or None (relative, another
    scheme, no host, or credentials in it). Protocol-relative URLs become ``https:``."""
    url = _browser_url(value)
    if url.startswith("//"):
        url = "https:" + url
    m = _WEB_URL_RE.match(url)
    if not m:
        return None
    authority = _AUTHORITY_RE.match(m.group(2))
    if not authority:
        return None
    return f"{m.group(1).lower()}://{authority.group(1)}{quote(authority.group(2) or '', safe=_URL_SAFE)}"



def _media_url(value: str) -> str | None:
    """What a media attribute keeps: ``cid:`` and raster ``data:`` images as they are (the viewer
    resolves ``cid:`` against the message's inline attachments), a remote URL marked to be moved
    to ``data-remote-src``, or None (dropped: relative URLs and every other scheme)."""
    url = re.sub(r"\s", "", _browser_url(value))
    if url[:4].lower() == "cid:" and len(url) > 4:
        return "cid:" + quote(url[4:], safe=_URL_SAFE)
    if _DATA_IMAGE_RE.match(url):
        return "data:" + url[5:]
    web = _web_url(value)
    return _REMOTE_MARK + web if web else None


def _link_url(value: str) -> str | None:
    """What ``href`` keeps: an http(s) URL or a ``mailto:``, as the browser reads it; else None."""
    web = _web_url(value)
    if web:
        return web
    m = _MAILTO_RE.match(_browser_url(value))
    return "mailto:" + quote(m.group(1), safe=_URL_SAFE) if m else None


def _style(value: str) -> str | None:
    """A ``style`` attribute without any declaration that could fetch something (see _CSS_FETCH_RE).
    With quotes or escapes around such a token, splitting declarations is not trusted: all goes."""
    if not _CSS_FETCH_RE.search(value):
        return value
    if _CSS_QUOTES_RE.search(value) or "\\" in value or "/*" in value:
        return None
    kept = [d for d in value.split(";") if d.strip() and not _CSS_FETCH_RE.search(d)]
    return ";".join(kept) or None


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """nh3's attribute filter: the last word on every attribute it keeps (nh3 checks nothing after)."""
    if attr in _MEDIA_URL_ATTRIBUTES:
        if attr == "srcset":  # "url 1x, url 2x": only the first candidate may become data-remote-src
            first = value.strip(_URL_TRIM).split(",")[0].split()
            url = _media_url(first[0]) if first else None
            return url if url and url.startswith(_REMOTE_MARK) else None
        return _media_url(value)
    if attr in _OTHER_URL_ATTRIBUTES:
        return _link_url(value) if attr == "href" and tag in ("a", "area") else None
    if attr == "style":
        return _style(value)
    return value


def _move_remote(match: re.Match[str]) -> str:
    """In one tag of nh3's output: the first marked attribute becomes data-remote-src, others go."""
    moved = False

    def one(m: re.Match[str]) -> str:
        nonlocal moved
        if moved:
            return ""
        moved = True
        return f' {REMOTE_SRC_ATTRIBUTE}="{m.group(1)}"'

    return _MARKED_ATTR_RE.sub(one, match.group(0))


def sanitize_html(html: str) -> str:
    """Return ``html`` made safe to render inside the help desk UI: showing it fetches nothing.

    Scripts, styles (``<style>`` with its content, so no ``@import``) and event handlers go. Of the
    URL-bearing attributes (judged as a browser reads them, see the module docs):

    * ``src`` keeps only ``cid:`` (left for the viewer to point at the message's inline attachment)
      and ``data:`` images of type PNG, JPEG, GIF or WebP;
    * a remote http(s) URL in ``src``, ``srcset``, ``background``, ``poster``, ``lowsrc`` moves to
      ``data-remote-src`` (one per element), so a viewer may offer "load remote images";
    * ``href`` of links keeps only http(s) and ``mailto:`` URLs, and links get
      ``rel="noopener noreferrer"``;
    * everything else is dropped: relative URLs (a same-origin request), other schemes, ``cite``…

    ``style`` keeps only harmless properties, and no declaration with ``url()``, ``image-set()``,
    escapes or comments. Never raises; returns ``""`` if the input cannot be sanitised.
    """
    if not isinstance(html, str) or not html:
        return ""
    try:
        cleaned = nh3.clean(
            html,
            tags=set(_ALLOWED_TAGS),
            clean_content_tags=set(_CLEAN_CONTENT_TAGS),
            attributes=_attributes(),
            attribute_filter=_filter_attribute,
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
    if _REMOTE_MARK in cleaned:
        cleaned = _TAG_RE.sub(_move_remote, cleaned)
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


_REMOTE_HTTPS_RE = re.compile(rf'\s{re.escape(REMOTE_SRC_ATTRIBUTE)}="(https://[^"]*)"')


def allow_remote_images(sanitized: str) -> str:
    """The output of :func:`sanitize_html` with its remote ``https:`` images shown: in each
    ``<img>`` without a ``src``, ``data-remote-src="https://…"`` becomes ``src``. Nothing else
    changes (``http:`` images, backgrounds and posters stay unloaded). Only for sanitised HTML,
    whose attributes nh3 wrote as ``name="value"`` with quotes escaped."""

    def one(tag: re.Match[str]) -> str:
        text = tag.group(0)
        if not re.match(r"<img[\s/>]", text, re.IGNORECASE) or re.search(r'\ssrc="', text):
            return text
        return _REMOTE_HTTPS_RE.sub(lambda m: f' src="{m.group(1)}"', text, count=1)

    return _TAG_RE.sub(one, sanitized) if REMOTE_SRC_ATTRIBUTE in sanitized else sanitized


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
