"""Quoted-reply stripping: keep the new part of a reply, drop quoted history and signature.

:func:`strip_quoted` works line by line (linear time) in three steps:

1. **Marker** — if :data:`REPLY_ABOVE_MARKER` (which the help desk puts in its own outgoing
   mails) is present, everything from its line on is cut, together with the attribution line(s)
   the client wrote just above it ("On …, … wrote:", possibly wrapped or ``>``-quoted).
2. **Hard cuts** — the text is cut at the first unquoted line that starts history or a
   signature: ``-----Original Message-----`` (and localisations), an Outlook header block
   (``From:`` followed by ``Sent:``/``Date:`` and ``To:``/``Subject:``, also ``*From:*`` and
   German/French/Spanish/Dutch labels), a line of 20+ underscores, an attribution line
   ("On <date>, <name> wrote:" on up to 3 lines; "Am … schrieb", "Le … a écrit", "El … escribió",
   "Op … schreef", …) followed by *unquoted* history, a signature separator ``-- `` and
   "Sent from my iPhone"-style lines.
3. **Quote blocks** — ``>``-quoted blocks at the end (and at the start, for bottom-posted
   replies) are removed together with their attribution line(s); quote blocks between two pieces
   of new text are kept, because they give the context of an inline (interleaved) reply.

If stripping would leave nothing although the text had content, the original text is returned
stripped.
"""

from __future__ import annotations

import re

__all__ = ["REPLY_ABOVE_MARKER", "strip_quoted"]

#: put in the help desk's outgoing mails; everything from this line down is history
REPLY_ABOVE_MARKER = "##- Please type your reply above this line -##"

_OPENER = r"(?:On|Am|Le|El|Op|Il|Em|Den|På|W dniu|Dne)\s"
_VERB = (
    r"(?:wrote|writes|schrieb|a\s+écrit|ecrit|escribió|escribio|schreef|ha\s+scritto|"
    r"escreveu|skrev|napisał|kirjoitti|написал[аи]?|napsal)"
)
#: one-line (or joined multi-line) attribution starting with "On"/"Am"/"Le"/… and ending "wrote:"
_ATTRIBUTION_RE = re.compile(rf"^\s*{_OPENER}.{{0,400}}?{_VERB}[^:\n]{{0,120}}:\s*$", re.IGNORECASE)
#: looser form, only trusted right above a quote block (e.g. "02.04.2012 Bob <b@x> написал:")
_OPENER_RE = re.compile(rf"\s*{_OPENER}", re.IGNORECASE)
_LOOSE_ATTRIBUTION_RE = re.compile(rf"^.{{0,400}}?{_VERB}[^:\n]{{0,120}}:\s*$", re.IGNORECASE)
_ORIGINAL_MESSAGE_RE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|"
    r"Message d'origine|Mensaje original|Oorspronkelijk bericht|Messaggio originale|"
    r"Mensagem original|Ursprungligt meddelande|Original meddelelse)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES_RE = re.compile(r"^\s*_{20,}\s*$")
_HEADER_FROM_RE = re.compile(r"^\s*\*?(?:From|Von|De|Van|Da|Od|Från|Fra)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT_RE = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Date d'envoi|Enviado|Fecha|Verzonden|Inviato|"
    r"Data|Skickat|Sendt)\s*:\*?\s*\S",
    re.IGNORECASE,
)
_HEADER_TO_RE = re.compile(
    r"^\s*\*?(?:To|Subject|An|Betreff|À|A|Objet|Para|Asunto|Aan|Onderwerp|Oggetto|Cc)\s*:\*?",
    re.IGNORECASE,
)
_SIGNATURE_RE = re.compile(r"^--\s*$")
_SENT_FROM_RE = re.compile(
    r"^\s*(?:Sent from my [\w .'’®&-]{1,60}|Sent from (?:Outlook|Mail|Yahoo Mail|Gmail)[\w .'’-]{0,40}|"
    r"Sent (?:from|via) (?:the )?[\w'’-]+ (?:app|mobile)[\w .'’-]{0,30}|Get Outlook for [\w ]{1,20}|"
    r"Von meinem [\w .'’-]{1,40} gesendet|Envoyé de mon [\w .'’-]{1,40}|Enviado desde mi [\w .'’-]{1,40}|"
    r"Verzonden met mijn [\w .'’-]{1,40}|Verstuurd vanaf mijn [\w .'’-]{1,40})\.?\s*$",
    re.IGNORECASE,
)
_WRAPPED_PART_RE = re.compile(r"@|\d[./:-]\d")
_DASHES_ONLY_RE = re.compile(r"^\s*[-_=*—]{2,}\s*$")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _next_nonblank(lines: list[str], start: int) -> int:
    i = start
    while i < len(lines) and _is_blank(lines[i]):
        i += 1
    return i


def _attribution_end(lines: list[str], i: int) -> int:
    """If an attribution starting with "On"/"Am"/… begins at line ``i`` (1-3 lines), return the
    index after it, else -1."""
    first = lines[i]
    if len(first) > 500 or _is_quoted(first) or not _OPENER_RE.match(first):
        return -1
    joined = first
    for k in range(3):
        if k:
            if i + k >= len(lines) or _is_blank(lines[i + k]) or _is_quoted(lines[i + k]):
                return -1
            joined = joined + " " + lines[i + k].strip()
        if _ATTRIBUTION_RE.match(joined):
            return i + k + 1
    return -1


def _outlook_header_at(lines: list[str], i: int) -> bool:
    """True if an Outlook-style "From: / Sent: / To: / Subject:" block starts at line ``i``."""
    if not _HEADER_FROM_RE.match(lines[i]):
        return False
    sent = other = False
    for line in lines[i + 1 : i + 7]:
        if _HEADER_SENT_RE.match(line):
            sent = True
        elif _HEADER_TO_RE.match(line):
            other = True
        if sent and other:
            return True
    return False


def _looks_wrapped(line: str) -> bool:
    """A line that may be the first half of a wrapped attribution (has a date or an address)."""
    return bool(_WRAPPED_PART_RE.search(line)) and not line.rstrip().endswith((".", "!", "?"))


def _strip_attribution_above(lines: list[str], end: int) -> int:
    """Return the index where the attribution ending right above ``end`` starts (or ``end``).

    Looks back over blank lines and up to three non-blank lines (an attribution wrapped by the
    client); quote markers are ignored, so "> On … wrote:" is recognised too.
    """
    j = end
    while j > 0 and _is_blank(lines[j - 1]):
        j -= 1
    joined = ""
    strict = loose = -1
    for k in range(1, 4):
        idx = j - k
        if idx < 0 or _is_blank(lines[idx]):
            break
        joined = (lines[idx].lstrip("> \t") + " " + joined).strip()
        if len(joined) > 600:
            break
        if _ATTRIBUTION_RE.match(joined):
            strict = idx
        elif loose < 0 and _LOOSE_ATTRIBUTION_RE.match(joined):
            loose = idx
        elif loose >= 0 and idx == loose - 1 and _looks_wrapped(lines[idx]):
            loose = idx  # the loose attribution was wrapped: "date name <" / "addr> wrote:"
    if strict >= 0:
        return strict
    return loose if loose >= 0 else end


def _cut_at_marker(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if REPLY_ABOVE_MARKER in line:
            return lines[: _strip_attribution_above(lines, i)]
    return lines


def _hard_cut(lines: list[str]) -> list[str]:
    """Cut at the first unquoted line that starts history or a signature."""
    for i, line in enumerate(lines):
        if _is_quoted(line) or _is_blank(line):
            continue
        stripped = line.strip()
        if (
            _SIGNATURE_RE.match(line)
            or _ORIGINAL_MESSAGE_RE.match(stripped)
            or _UNDERSCORES_RE.match(stripped)
            or _SENT_FROM_RE.match(stripped)
            or _outlook_header_at(lines, i)
        ):
            return lines[:i]
        end = _attribution_end(lines, i)
        if end >= 0:
            nxt = _next_nonblank(lines, end)
            if nxt < len(lines) and not _is_quoted(lines[nxt]):
                return lines[:i]  # unquoted history follows the attribution
    return lines


def _strip_trailing_quotes(lines: list[str]) -> list[str]:
    """Remove blank lines, quote blocks, their attributions and separator lines at the end."""
    while True:
        end = len(lines)
        while end and _is_blank(lines[end - 1]):
            end -= 1
        start = end
        while start and (_is_quoted(lines[start - 1]) or _is_blank(lines[start - 1])):
            start -= 1
        if start < end:
            start = _strip_attribution_above(lines, start)
        while start and _DASHES_ONLY_RE.match(lines[start - 1]):
            start -= 1
        if start == len(lines):
            return lines
        lines = lines[:start]


def _strip_leading_quotes(lines: list[str]) -> list[str]:
    """Remove an attribution + quote block at the top (bottom-posted reply)."""
    i = _next_nonblank(lines, 0)
    if i >= len(lines):
        return lines
    end = _attribution_end(lines, i)
    j = _next_nonblank(lines, end) if end >= 0 else i
    if j >= len(lines) or not _is_quoted(lines[j]):
        return lines
    while j < len(lines) and (_is_quoted(lines[j]) or _is_blank(lines[j])):
        j += 1
    return lines[j:]


def strip_quoted(text: str) -> str:
    """Return the new part of a reply: ``text`` without quoted history and signature.

    See the module docstring for what is recognised. The result is stripped of surrounding blank
    lines; it is never empty when ``text`` had non-blank content (the original, stripped, is
    returned instead). Runs in linear time in the length of ``text``.
    """
    if not isinstance(text, str) or not text.strip():
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _cut_at_marker(lines)
    lines = _hard_cut(lines)
    lines = _strip_trailing_quotes(lines)
    lines = _strip_leading_quotes(lines)
    result = "\n".join(line.rstrip() for line in lines).strip("\n").rstrip()
    # keep leading indentation of the first line but no leading blank lines
    if not result.strip():
        return text.strip()
    return result.strip()
