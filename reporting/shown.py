"""How data text is shown in the report, e-mails and chart alt text: bounded and undisguised."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

TEXT_MAX_CHARS = 1_500
# Longest unbroken run (no whitespace) shown: longer than any name, path or URL of a report.
# WeasyPrint breaks a long word in time quadratic in its length (1,500 characters: ~1 s).
WORD_MAX_CHARS = 300
_LONG_WORD = re.compile(rf"\S{{{WORD_MAX_CHARS + 1},}}")
# Bidirectional overrides, embeddings, isolates and marks: in data they only disguise text
# (`invoice\u202egnp.exe` reads as `invoiceexe.png`), so the report and e-mails drop them.
BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
)


def bounded(value: Any) -> Any:
    """What every `{{ }}` shows: text without bidi controls, words cut at WORD_MAX_CHARS and
    the whole at TEXT_MAX_CHARS with `…`; markup (macro output) and non-text pass unchanged."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    text = value.translate(BIDI_CONTROLS)
    if len(text) > WORD_MAX_CHARS:
        text = _LONG_WORD.sub(lambda word: word.group()[: WORD_MAX_CHARS - 1] + "…", text)
    return text if len(text) <= TEXT_MAX_CHARS else text[: TEXT_MAX_CHARS - 1] + "…"
