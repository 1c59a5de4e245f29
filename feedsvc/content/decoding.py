"""Bytes -> text: UTF-8 (with or without BOM), else GB18030/GBK when it can be detected;
binary files and characters XML 1.0 forbids are dealt with here, once."""

from __future__ import annotations

import re

from charset_normalizer import from_bytes

from feedsvc.errors import NoteEncodingError

_CHINESE_ENCODINGS = {"gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950", "cp936"}
# C0 controls other than tab/newline/CR, DEL, C1 controls, surrogates, U+FFFE/U+FFFF and the
# private-use markers content uses internally.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff\ue000\ue001]")


def decode_note(raw: bytes, *, source: str, path: str) -> tuple[str, int]:
    """Decode a note's bytes or raise NoteEncodingError naming the file. Returns the text
    without characters XML 1.0 forbids, and how many were removed."""
    if b"\x00" in raw[:8192]:
        raise NoteEncodingError(source, path, "binary file (contains NUL bytes), not a text note")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = _decode_detected(raw, source=source, path=path, error=e)
    clean, removed = _FORBIDDEN.subn("", text)
    return clean.replace("\r\n", "\n"), removed


def remove_forbidden_chars(text: str) -> str:
    return _FORBIDDEN.sub("", text)


def _decode_detected(raw: bytes, *, source: str, path: str, error: UnicodeDecodeError) -> str:
    best = from_bytes(raw[:200_000]).best()
    encoding = (best.encoding if best is not None else "").lower().replace("_", "")
    if encoding in _CHINESE_ENCODINGS:
        codec = "big5hkscs" if encoding.startswith(("big5", "cp950")) else "gb18030"
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            pass
    guess = f" (looks like {best.encoding})" if best is not None else ""
    raise NoteEncodingError(
        source, path, f"not UTF-8: invalid byte at offset {error.start}{guess}") from None
