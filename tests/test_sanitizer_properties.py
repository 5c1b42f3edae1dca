"""Property test: whatever obfuscation a mail uses, ``sanitize_html`` output makes no browser fetch.

The generated HTML puts one URL, disguised the ways browsers still accept (character references,
tabs and newlines inside the scheme, leading spaces and control characters, backslashes for
slashes, mixed case, a special scheme without slashes, protocol-relative and relative paths), into
every URL-bearing place we know: ``src``, ``srcset``, ``background``, ``poster``, ``lowsrc``,
``href``, ``cite``, a ``style`` attribute's ``url()`` / ``image-set()`` and a ``<style>`` sheet with
``@import``. The output is parsed with :mod:`html.parser` and every attribute is inspected by
:func:`fetchable`, which :mod:`test_trust_mail` reuses for the cases of issue 10.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import example, given
from hypothesis import strategies as st

from helpdesk_core.mail.html import allow_remote_images, sanitize_html

#: attributes a browser loads (or may load) without a click
_FETCHING = {"src", "srcset", "background", "poster", "lowsrc", "dynsrc", "data", "codebase", "archive",
             "classid", "longdesc", "manifest", "icon", "formaction", "action", "ping", "xlink:href"}
_SAFE_SRC_RE = re.compile(r"^(?:cid:[^\s]+|data:image/(?:png|jpeg|gif|webp)(?:;[\w=.+-]+)*,[^\s]*)$", re.I)
_LINK_RE = re.compile(r"^(?:https?://[^\s\\/?#@]+(?:[/?#][^\s\\]*)?|mailto:[^\s\\]+)$")
_CSS_FETCH_RE = re.compile(r"url|image|@import|expression|\\", re.I)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [(k, v or "") for k, v in attrs]))


def fetchable(html: str) -> list[str]:
    """Every place in ``html`` that could make a browser load something, as ``tag attr=value``.

    Allowed: ``src`` of ``cid:`` or of a ``data:`` PNG/JPEG/GIF/WebP, ``href`` of an ``a``/``area``
    that is exactly an http(s) URL with a host or a ``mailto:`` (what the browser sees is what was
    checked: no whitespace, no backslash), a ``style`` without ``url``/``image``/``@import``, and
    ``data-remote-src`` (never loaded by a browser). Anything else URL-bearing is reported.
    """
    collector = _Collector()
    collector.feed(html)
    collector.close()
    found: list[str] = []
    for tag, attrs in collector.tags:
        if tag in ("style", "link", "script", "iframe", "object", "embed", "base", "meta", "svg", "video",
                   "audio", "source", "picture", "input", "frame", "frameset", "applet", "image"):
            found.append(f"<{tag}>")
        for name, value in attrs:
            bad = (
                (name in _FETCHING and not (name == "src" and _SAFE_SRC_RE.match(value)))
                or (name == "href" and not (tag in ("a", "area") and _LINK_RE.match(value)))
                or name == "cite"
                or (name == "style" and _CSS_FETCH_RE.search(value))
                or (name == "data-remote-src" and not value.startswith(("http://", "https://")))
            )
            if bad:
                found.append(f"{tag} {name}={value!r}")
    if re.search(r"@import", html, re.I) and "<style" in html.lower():
        found.append("@import")
    return found


# ---- generated obfuscations -------------------------------------------------------------------


def _entity(ch: str) -> st.SearchStrategy[str]:
    return st.sampled_from([ch, f"&#{ord(ch)};", f"&#x{ord(ch):x};", f"&#X{ord(ch):X};", f"&#0{ord(ch)};"])


_noise = st.sampled_from(["", "\t", "\n", "\r", "&#9;", "&#10;", "&#13;", "&Tab;", "&NewLine;"])
_lead = st.sampled_from(["", " ", "  ", "\x01", "\x1f", "&#32;", "&#0;", "\u00a0", "\t\n "])


@st.composite
def obfuscated_url(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTtPs", "", "ftp", "javascript", "vbscript"]))
    scheme = "".join(c.upper() if draw(st.booleans()) else c for c in scheme)
    scheme = "".join(draw(_entity(c)) + draw(_noise) for c in scheme)
    colon = draw(st.sampled_from([":", "&#58;", "&colon;", "&#x3a;"])) if scheme else ""
    slashes = draw(st.sampled_from(["//", "", "\\\\", "/\\", "\\/", "&#47;&#47;", "/", "\\", "&#92;&#92;",
                                    "///", "/\t/"]))
    host = draw(st.sampled_from(["evil.test", "EVIL.test", "evil.test:8080", "127.0.0.1", "[::1]",
                                 "user@evil.test", "evil&#46;test"]))
    path = draw(st.sampled_from(["/a.gif", "", "/admin/tickets/1/close", "?q=1", "#x"]))
    trail = draw(st.sampled_from(["", " ", "\t", " 2x"]))
    return draw(_lead) + scheme + colon + slashes + host + path + trail


@st.composite
def html_with_url(draw: st.DrawFn) -> str:
    url = draw(obfuscated_url())
    quote = draw(st.sampled_from(['"', "'"]))
    template = draw(st.sampled_from([
        "<img src={q}{u}{q}>", "<IMG SRC={q}{u}{q} alt=x>", "<img srcset={q}{u} 1x, {u} 2x{q}>",
        "<img src=cid:logo srcset={q}{u}{q}>", "<table background={q}{u}{q}><tr><td>x</td></tr></table>",
        "<table><tr><td background={q}{u}{q}>x</td></tr></table>", "<video poster={q}{u}{q}></video>",
        "<img lowsrc={q}{u}{q}>", "<a href={q}{u}{q}>link</a>", "<blockquote cite={q}{u}{q}>q</blockquote>",
        "<div style={q}background:url({u}){q}>x</div>", "<p style={q}background-image: URL( {u} ){q}>x</p>",
        "<span style={q}color:red;background:image-set({u} 1x){q}>x</span>",
        "<style>@import {q}{u}{q}; body {{background:url({u})}}</style>x",
        "<svg><image href={q}{u}{q}/></svg>", "<picture><source srcset={q}{u}{q}><img></picture>",
        "<input type=image src={q}{u}{q}>", "<link rel=stylesheet href={q}{u}{q}>",
        "<body background={q}{u}{q}>x</body>", "<object data={q}{u}{q}></object>",
    ]))
    return template.format(q=quote if quote not in url else "", u=url)


@given(html_with_url())
@example('<img src="\\\\evil.test/a.gif">')
@example('<img src="/\\evil.test/b.gif">')
@example('<img src="http:evil.test/c.gif">')
@example('<img src="ht&#9;tp://evil.test/e.gif">')
@example('<img src="&#10;//evil.test/f.gif">')
@example('<img src=" http://evil.test/g.gif">')
@example('<img src="/admin/tickets/1/close">')
def test_sanitized_html_fetches_nothing(html: str) -> None:
    out = sanitize_html(html)
    assert fetchable(out) == [], (html, out)


@given(st.text(max_size=300), html_with_url())
def test_surrounding_text_and_nesting_do_not_help(text: str, html: str) -> None:
    out = sanitize_html(f"<div>{text}{html}<p>{text}</p></div>")
    assert fetchable(out) == [], (html, out)


_HTTPS_IMG_RE = re.compile(r"^img src='https://[^\s\\/?#@']+(?:[/?#][^\s\\']*)?'$")


@given(st.text(max_size=100), html_with_url())
def test_remote_images_opt_in_loads_only_https_images(text: str, html: str) -> None:
    """"Load remote images" (the web app's per-message opt-in) turns on nothing but ``<img src>``
    of an https URL the sanitiser wrote."""
    out = allow_remote_images(sanitize_html(f"<div>{text}{html}</div>"))
    assert [f for f in fetchable(out) if not _HTTPS_IMG_RE.match(f)] == [], (html, out)
