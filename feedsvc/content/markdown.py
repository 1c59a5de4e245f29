"""Markdown -> sanitized, feed-ready HTML.

markdown-it-py parses (CommonMark + tables, strikethrough, footnotes, task lists, $/$$ and
\\(\\)/\\[\\] math, Obsidian wikilinks). Code and math are rendered by trusted generators and
kept out of the sanitizer's way as private-use markers; everything else goes through nh3, whose
attribute filter also makes every link and image absolute."""

from __future__ import annotations

import contextvars
import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType
from markdown_it.utils import OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from mdit_py_plugins.texmath import texmath_plugin

from feedsvc.content.highlight import highlight_code
from feedsvc.content.links import LinkResolver
from feedsvc.model import is_note_path
from feedsvc.content.links import name_key
from feedsvc.content.links import path_key
from feedsvc.content.links import resolve_relative
from feedsvc.content.mathml import MATHML_ATTRIBUTES
from feedsvc.content.mathml import MATHML_TAGS
from feedsvc.content.mathml import tex_to_mathml

MAX_NESTING = 40  # deeper lists/quotes are flattened by markdown-it, never recursed into
_MARKER = re.compile("\ue000(\\d+)\ue001")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".avif")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpe?g|webp);base64,[A-Za-z0-9+/=\s]+$", re.I)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

ALLOWED_TAGS = (set(nh3.ALLOWED_TAGS) | set(MATHML_TAGS) | {
    "kbd", "mark", "details", "summary", "figure", "figcaption", "section", "input", "del", "s",
}) - {"style", "script"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()
}
ALLOWED_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "title", "width", "height"})
ALLOWED_ATTRIBUTES.setdefault("a", set()).update({"href", "title", "id"})
for _tag in ("li", "sup", "section", "h1", "h2", "h3", "h4", "h5", "h6"):
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).add("id")
ALLOWED_ATTRIBUTES["input"] = {"type", "checked", "disabled"}
for _tag in MATHML_TAGS:
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).update(MATHML_ATTRIBUTES)
URL_ATTRIBUTES = {"href", "src", "cite", "longdesc"}


@dataclass
class RenderContext:
    """Per-note state the renderer rules need (carried in markdown-it's env)."""

    source: str
    rel_path: str
    entry_url: str
    resolver: LinkResolver
    blocks: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def stash(self, trusted_html: str) -> str:
        self.blocks.append(trusted_html)
        return f"\ue000{len(self.blocks) - 1}\ue001"


def _wikilink_rule(state: StateInline, silent: bool) -> bool:
    """[[target]], [[target|label]], [[target#heading]] and ![[embed]] (Obsidian)."""
    src, pos = state.src, state.pos
    embed = src.startswith("![[", pos)
    start = pos + (3 if embed else 2)
    if not embed and not src.startswith("[[", pos):
        return False
    end = src.find("]]", start)
    if end < 0 or "\n" in src[start:end] or end == start:
        return False
    if not silent:
        inner = src[start:end]
        target, _, label = inner.partition("|")
        token = state.push("wikilink", "", 0)
        token.meta = {"target": target.strip(), "label": label.strip(), "embed": embed}
        token.content = label.strip() or target.split("#", 1)[0].strip() or target.strip()
    state.pos = end + 2
    return True


@functools.cache
def create_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "maxNesting": MAX_NESTING})
    md.enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_digits=False, double_inline=True)
    md.use(texmath_plugin, delimiters="brackets")
    md.use(footnote_plugin)
    md.use(tasklists_plugin)
    md.inline.ruler.before("link", "wikilink", _wikilink_rule)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    for name in ("math_inline", "math_inline_double", "math_single"):
        md.add_render_rule(name, _render_math_inline)
    for name in ("math_block", "math_block_eqno", "amsmath"):
        md.add_render_rule(name, _render_math_block)
    md.add_render_rule("wikilink", _render_wikilink)
    return md


def parse_markdown(body: str) -> list[Token]:
    return create_markdown().parse(body)


_CLEANING: contextvars.ContextVar[RenderContext] = contextvars.ContextVar("feedsvc_cleaning")


def _filter_current(element: str, attribute: str, value: str) -> str | None:
    return _filter_attribute(_CLEANING.get(), element, attribute, value)


@functools.cache
def _cleaner() -> nh3.Cleaner:
    """One sanitiser, built once: nh3.clean() builds its rule set on every call, which cost
    more than the cleaning itself. The note being cleaned reaches the URL filter through
    a context variable."""
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_current,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def render_html(tokens: Sequence[Token], context: RenderContext) -> str:
    md = create_markdown()
    raw = md.renderer.render(tokens, md.options, {"feedsvc": context})
    token = _CLEANING.set(context)
    try:
        clean = _cleaner().clean(raw)
    finally:
        _CLEANING.reset(token)
    return _MARKER.sub(lambda m: context.blocks[int(m.group(1))], clean)


def _ctx(env: EnvType) -> RenderContext:
    context: RenderContext = env["feedsvc"]
    return context


def _render_fence(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
                  env: EnvType) -> str:
    token = tokens[idx]
    return _ctx(env).stash(highlight_code(token.content, token.info or ""))


def _render_math_inline(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
                        env: EnvType) -> str:
    return _ctx(env).stash(tex_to_mathml(tokens[idx].content, False))


def _render_math_block(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
                       env: EnvType) -> str:
    return _ctx(env).stash(tex_to_mathml(tokens[idx].content, True)) + "\n"


def _render_wikilink(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
                     env: EnvType) -> str:
    context = _ctx(env)
    meta = tokens[idx].meta
    target: str = meta["target"]
    label = html.escape(tokens[idx].content)
    name = target.partition("#")[0]
    if meta["embed"] and name.lower().endswith(_IMAGE_EXTENSIONS):
        media = context.resolver.media_path_for_name(context.source, name)
        if media is None:
            return ""
        url = context.resolver.media_url(context.source, media)
        alt = html.escape(meta["label"] or name.rsplit("/", 1)[-1])
        return context.stash(f'<img src="{html.escape(url)}" alt="{alt}">')
    if not name:
        return label
    context.links.append(name_key(name))
    entry_url = context.resolver.entry_url_for_name(name)
    if entry_url is None:
        return label
    return context.stash(f'<a href="{html.escape(entry_url)}">{label}</a>')


def _filter_attribute(context: RenderContext, element: str, attribute: str,
                      value: str) -> str | None:
    if attribute not in URL_ATTRIBUTES:
        return value
    return absolute_url(context, element, value)


def absolute_url(context: RenderContext, element: str, value: str) -> str | None:
    """Make a link or image target absolute, or drop it (None) if it is unsafe."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("#"):
        return context.entry_url + value
    if value.startswith("//"):
        return "https:" + value
    if _SCHEME.match(value):
        lowered = value.lower()
        if lowered.startswith(_SAFE_SCHEMES):
            return value
        if element == "img" and _DATA_IMAGE.match(value):
            return value
        return None
    base = context.entry_url.split("/entries/", 1)[0] + "/"
    if value.startswith("/"):
        return base + value.lstrip("/")
    rel = resolve_relative(context.rel_path, value)
    if rel is None:
        return None
    fragment = "#" + value.split("#", 1)[1] if "#" in value else ""
    if is_note_path(rel):
        context.links.append(path_key(context.source, rel))
        url = context.resolver.entry_url_for_path(context.source, rel)
        return url + fragment if url else None
    return context.resolver.media_url(context.source, rel)
