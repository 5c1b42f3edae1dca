"""Control characters in text that came from a mail: removed before it is stored or shown.

* :func:`strip_controls` makes one line of a decoded display name or subject: CR, LF, tabs and the
  Unicode line/paragraph separators become one space, every other C0/C1 control character, DEL and
  the bidirectional overrides (which make a name read differently from what it is) are removed.
  Such text can then go into an outgoing header and a log line without starting a new one.
* :func:`escape_controls` is for JSON a terminal prints: the control characters that ``json.dumps``
  (``ensure_ascii=False``) leaves raw (C1, DEL, bidirectional overrides) become ``\\uXXXX`` escapes,
  so the JSON means the same and prints nothing a terminal obeys.
* :func:`terminal_safe` is for text a terminal prints (the CLI): whole escape sequences (CSI, OSC
  such as a window-title change, DCS/PM/APC strings, C1 CSI) are removed first, then every control
  character but newline and tab, and the bidirectional overrides.

Neither function raises on any string.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls", "strip_controls", "terminal_safe"]

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINE_BREAKS_RE = re.compile(r"[\t\n\v\f\r\u2028\u2029]+")
_CONTROLS_RE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_SPACES_RE = re.compile(r" {2,}")
#: ESC sequences: string controls (OSC, DCS, SOS, PM, APC) up to BEL/ST, CSI, then two-character ones
_ESCAPE_RE = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_TERMINAL_CONTROLS_RE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def strip_controls(text: str) -> str:
    """``text`` as one line without control characters (see the module docs); ends trimmed."""
    if not text:
        return ""
    text = _CONTROLS_RE.sub("", _LINE_BREAKS_RE.sub(" ", text))
    return _SPACES_RE.sub(" ", text).strip()


def terminal_safe(text: str) -> str:
    """``text`` without terminal escape sequences and control characters other than newline and
    tab, so printing it cannot move the cursor, recolour, retitle or rewrite the terminal."""
    if not text:
        return ""
    return _TERMINAL_CONTROLS_RE.sub("", _ESCAPE_RE.sub("", text))


def escape_controls(json_text: str) -> str:
    """``json_text`` (the output of ``json.dumps``) with every control character written as a JSON
    ``\\uXXXX`` escape: outside strings JSON has none but newline and tab, which are kept."""
    return _TERMINAL_CONTROLS_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
