"""Remove characters XML 1.0 forbids (feedgen/lxml raise on them at render time)."""

from __future__ import annotations

import re

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _FORBIDDEN.sub("", text)
