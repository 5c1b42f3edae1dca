"""Issue 11: the MIME accounting invariant, over generated MIME trees (nesting, dispositions, names,
encodings): every leaf part ends in exactly one of body (displayed or alternative), attachment
(inline images included) or ``removed_attachments``; only parts beyond ``max_parts`` are removed.

Each generated leaf carries a unique marker (``LEAF<n>X``) in its content; after parsing, the
marker must be found in exactly one place.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk_core.mail.parsing import parse_message

HEAD = (b"From: Alice <alice@example.test>\r\nTo: help@example.test\r\nSubject: generated\r\n"
        b"Message-ID: <gen@example.test>\r\nMIME-Version: 1.0\r\n")
LEAF_TYPES = ["text/plain", "text/html", "image/png", "application/pdf", "application/octet-stream",
              "text/calendar", "application/pgp-signature", "application/pgp-encrypted", "message/rfc822"]
CONTAINERS = ["mixed", "alternative", "related", "signed", "encrypted"]


@dataclass
class Leaf:
    ctype: str
    disposition: str | None
    name: str | None  # None, "ascii" or "rfc2231"
    encoding: str
    content_id: bool


@dataclass
class Container:
    subtype: str
    children: list


leaves = st.builds(Leaf, st.sampled_from(LEAF_TYPES), st.sampled_from([None, "inline", "attachment"]),
                   st.sampled_from([None, "ascii", "rfc2231"]), st.sampled_from(["7bit", "quoted-printable", "base64"]),
                   st.booleans())
trees = st.recursive(leaves, lambda kids: st.builds(Container, st.sampled_from(CONTAINERS),
                                                    st.lists(kids, min_size=1, max_size=4)), max_leaves=12)


class _Builder:
    def __init__(self) -> None:
        self.count = 0

    def build(self, node: Leaf | Container) -> bytes:
        if isinstance(node, Container):
            boundary = f"=_b{self.count}_{len(node.children)}=".encode()
            self.count += 1
            out = [b'Content-Type: multipart/' + node.subtype.encode() + b'; boundary="' + boundary + b'"\r\n\r\n'
                   b"This is a multi-part message in MIME format.\r\n"]
            for child in node.children:
                out.append(b"--" + boundary + b"\r\n" + self.build(child) + b"\r\n")
            out.append(b"--" + boundary + b"--\r\n")
            return b"".join(out)
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> bytes:
        index = self.count
        self.count += 1
        marker = f"LEAF{index}X"
        if leaf.ctype == "message/rfc822":
            inner = f"From: bob@example.test\r\nSubject: inner {index}\r\n\r\nInner text {marker}\r\n".encode()
            return b"Content-Type: message/rfc822\r\n\r\n" + inner
        if leaf.ctype == "text/html":
            content = f"<p>Hello {marker} ü</p>".encode()
        elif leaf.ctype.startswith("text/"):
            content = f"Hello {marker} ü\r\n".encode()
        else:
            content = b"\x89\x00\xffbinary " + marker.encode() + b" \x00\x01"
        headers = [f"Content-Type: {leaf.ctype}" + ("; charset=utf-8" if leaf.ctype.startswith("text/") else "")]
        encoding = leaf.encoding if leaf.ctype.startswith("text/") else "base64"
        if encoding == "7bit":
            encoding = "8bit"
            body = content
        elif encoding == "quoted-printable":
            body = quopri.encodestring(content)
        else:
            body = base64.encodebytes(content)
        headers.append(f"Content-Transfer-Encoding: {encoding}")
        name = {None: None, "ascii": f'filename="file-{index}.dat"',
                "rfc2231": f"filename*=utf-8''f%C3%AFle-{index}.dat"}[leaf.name]
        if leaf.disposition or name:
            headers.append(f"Content-Disposition: {leaf.disposition or 'attachment'}" + (f"; {name}" if name else ""))
        if leaf.content_id:
            headers.append(f"Content-ID: <part{index}@example.test>")
        return "\r\n".join(headers).encode() + b"\r\n\r\n" + body


def _markers_in_order(node: Leaf | Container, counter: list[int], out: list[str]) -> None:
    """The markers of the leaves in document order (the numbering of :class:`_Builder`)."""
    index = counter[0]
    counter[0] += 1
    if isinstance(node, Container):
        for child in node.children:
            _markers_in_order(child, counter, out)
    else:
        out.append(f"LEAF{index}X")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, max_parts=st.sampled_from([0, 0, 500, 1, 2, 3, 5]))
def test_every_leaf_part_ends_in_exactly_one_place(tree: Leaf | Container, max_parts: int) -> None:
    raw = HEAD + _Builder().build(tree)
    markers: list[str] = []
    _markers_in_order(tree, [0], markers)
    msg = parse_message(raw, max_parts=max_parts)
    body = (msg.body_text or "") + "\n" + (msg.body_html or "")
    kept = markers if not max_parts else markers[:max_parts]
    for marker in markers:
        places = int(marker in body) + sum(marker.encode() in a.data for a in msg.attachments)
        if marker in kept:
            assert places == 1, (marker, places, raw)
        else:
            assert places == 0, (marker, raw)
    beyond = len(markers) - len(kept)
    assert (beyond == 0) == (not msg.removed_attachments)
    assert len(msg.removed_attachments) <= beyond
    assert all(r["reason"] and r["filename"] for r in msg.removed_attachments)
    assert len(msg.attachments) <= len(kept)
    assert msg.raw == raw
