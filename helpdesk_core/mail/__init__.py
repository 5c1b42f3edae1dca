"""Pure mail handling: bytes and messages in, values out (parsing, headers, MIME parts, HTML, quotes,
references, automated-mail detection, composing and rendering outgoing mail). No database."""
