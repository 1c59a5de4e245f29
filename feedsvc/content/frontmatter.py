"""Split YAML front matter from a note and turn it into typed fields.

Only the safe YAML subset is read, aliases are refused (an alias bomb expands to gigabytes
when walked), and every wrong type is a FrontMatterError naming the key."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml

from feedsvc.errors import FrontMatterError

MAX_FRONT_MATTER_CHARS = 64 * 1024
_OPENING = re.compile(r"\A---[ \t]*\r?\n")
_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases outright and leaves dates as text (parsed by
    get_datetime, so a bad date is reported against its key)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in front matter", event.start_mark)
        return super().compose_node(parent, index)


_NoAliasLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_FastBase: Any = getattr(yaml, "CSafeLoader", None)


def _load_fast(raw: str) -> Any:
    """libyaml's parser for the common case (≈10× faster). An alias shows as a node reached
    twice in the composed tree: then, and on any error, _NoAliasLoader reads the text again
    (and refuses it, or gives its own message)."""
    if _FastLoader is None:
        return yaml.load(raw, Loader=_NoAliasLoader)
    try:
        loader = _FastLoader(raw)
        try:
            node = loader.get_single_node()
            if node is not None and not _has_alias(node):
                return loader.construct_document(node)
        finally:
            loader.dispose()
    except Exception:  # the pure-Python loader gives the error (or the value) itself
        pass
    return yaml.load(raw, Loader=_NoAliasLoader)


def _has_alias(root: Any) -> bool:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return False


_FastLoader: Any = None
if _FastBase is not None:
    _FastLoader = type("_FastLoader", (_FastBase,), {})
    _FastLoader.yaml_implicit_resolvers = _NoAliasLoader.yaml_implicit_resolvers


@dataclass(frozen=True, slots=True)
class FrontMatter:
    fields: dict[str, Any]
    body: str


def split_front_matter(text: str, *, source: str, path: str) -> FrontMatter:
    """Separate a leading `---` YAML block from the body; no block means empty fields."""
    opening = _OPENING.match(text)
    if not opening:
        return FrontMatter({}, text)
    closing = _CLOSING.search(text, opening.end())
    if closing is None:
        raise FrontMatterError(source, path, "front matter: no closing '---' line")
    raw = text[opening.end():closing.start()]
    if len(raw) > MAX_FRONT_MATTER_CHARS:
        raise FrontMatterError(source, path, f"front matter over {MAX_FRONT_MATTER_CHARS} characters")
    body_start = closing.end()
    if text.startswith("\r\n", body_start):
        body_start += 2
    elif text.startswith("\n", body_start):
        body_start += 1
    try:
        data = _load_fast(raw) if raw.strip() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FrontMatterError(source, path, f"malformed front matter{where}: {problem}") from None
    except RecursionError:
        raise FrontMatterError(source, path, "malformed front matter: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError(source, path,
                               f"front matter must be a mapping, got {type(data).__name__}")
    return FrontMatter({str(k): v for k, v in data.items()}, text[body_start:])


def body_after_front_matter(text: str) -> str:
    """The body split_front_matter returns, for text it accepted, without reading the YAML."""
    opening = _OPENING.match(text)
    if not opening:
        return text
    closing = _CLOSING.search(text, opening.end())
    if closing is None:
        return text
    body_start = closing.end()
    if text.startswith("\r\n", body_start):
        body_start += 2
    elif text.startswith("\n", body_start):
        body_start += 1
    return text[body_start:]


def get_str(fields: dict[str, Any], key: str, *, source: str, path: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (list, dict, dt.date)):
        raise FrontMatterError(source, path,
                               f"front matter '{key}': expected text, got {_type_name(value)}")
    text = str(value).strip()
    return text or None


def get_bool(fields: dict[str, Any], key: str, *, source: str, path: str) -> bool:
    value = fields.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise FrontMatterError(source, path,
                           f"front matter '{key}': expected true or false, got {value!r:.60}")


def get_tags(fields: dict[str, Any], *, source: str, path: str) -> tuple[str, ...]:
    value = fields.get("tags", fields.get("tag"))
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = [t for t in re.split(r"[,\s]+", value) if t]
    elif isinstance(value, list):
        items = value
    else:
        raise FrontMatterError(source, path,
                               f"front matter 'tags': expected a list, got {_type_name(value)}")
    tags: list[str] = []
    for item in items:
        if isinstance(item, (list, dict)) or item is None:
            raise FrontMatterError(source, path,
                                   f"front matter 'tags': expected text items, got {_type_name(item)}")
        tag = str(item).strip().lstrip("#")
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def get_datetime(fields: dict[str, Any], key: str, tz: dt.tzinfo, *, source: str,
                 path: str) -> dt.datetime | None:
    """A date, datetime (with or without offset), ISO 8601 text or epoch number, as aware UTC."""
    value = fields.get(key)
    if value is None or value == "":
        return None
    try:
        return to_utc(value, tz)
    except (ValueError, OverflowError, OSError, TypeError):
        raise FrontMatterError(source, path,
                               f"front matter '{key}': not a date: {value!r:.60}") from None


def to_utc(value: Any, tz: dt.tzinfo) -> dt.datetime:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            return dt.datetime.fromtimestamp(float(text), dt.timezone.utc)
        text = text.replace("Z", "+00:00").replace("z", "+00:00")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}(:\d{2})?.*", text):
            text = text.replace(" ", "T", 1)
        moment = dt.datetime.fromisoformat(text)
    else:
        raise TypeError(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(dt.timezone.utc)


def _type_name(value: Any) -> str:
    return {list: "a list", dict: "a mapping", bool: "true/false"}.get(type(value),
                                                                      type(value).__name__)
