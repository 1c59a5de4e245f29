"""The one path rule: what a path inside a source may look like, whoever names it (a webhook
payload, the watcher, a /media URL, a walk). Relative, POSIX, no NUL or backslash, no `..`,
no hidden (dot) part. Checked on the string alone, so it holds for files served from the
store as for files on disk."""

from __future__ import annotations


def clean_rel_path(path: object) -> tuple[str | None, str]:
    """`path` as a clean relative POSIX path (empty and `.` parts dropped), or None and the
    reason it is refused."""
    if not isinstance(path, str) or not path:
        return None, "not a non-empty string"
    if "\x00" in path or "\\" in path:
        return None, "contains a NUL or a backslash"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None, "absolute path"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "climbs out with '..'"
    if not parts:
        return None, "names no file"
    if any(p.startswith(".") for p in parts):
        return None, "hidden (a part starts with '.')"
    return "/".join(parts), ""


def is_clean_rel_path(rel_path: str) -> bool:
    """Whether `rel_path` is already clean, as it stands (no part to drop)."""
    return clean_rel_path(rel_path)[0] == rel_path
