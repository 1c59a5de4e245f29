"""Note bytes -> ParsedNote. Pure: no disk, no database, no clock.

Two steps, so the scan can plan (ids, categories, slugs) before anything is rendered:
`read_note` decodes and reads the front matter and title; `render_note` renders the body
once the entry's own URL and the other notes' URLs are known."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it.token import Token

from feedsvc.content.decoding import decode_note
from feedsvc.content.decoding import remove_forbidden_chars
from feedsvc.content.excerpt import ExcerptSettings
from feedsvc.content.excerpt import make_excerpt
from feedsvc.content.frontmatter import body_after_front_matter
from feedsvc.content.frontmatter import get_bool
from feedsvc.content.frontmatter import get_datetime
from feedsvc.content.frontmatter import get_str
from feedsvc.content.frontmatter import get_tags
from feedsvc.content.frontmatter import split_front_matter
from feedsvc.content.links import LinkResolver
from feedsvc.content.markdown import RenderContext
from feedsvc.content.markdown import parse_markdown
from feedsvc.content.markdown import render_html
from feedsvc.content.slugs import slugify
from feedsvc.errors import NoteError
from feedsvc.model import NoteFile
from feedsvc.model import NoteHeader
from feedsvc.model import ParsedNote

__all__ = ["ContentSettings", "NoteText", "read_note", "read_body", "render_note", "parse_note",
           "slugify"]

_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
MAX_TITLE_CHARS = 300


@dataclass(frozen=True, slots=True)
class ContentSettings:
    tz: dt.tzinfo = dt.timezone.utc
    excerpt: ExcerptSettings = ExcerptSettings()


@dataclass(frozen=True, slots=True)
class NoteText:
    """A decoded note: its header and the Markdown body after the front matter."""

    header: NoteHeader
    body: str
    warnings: tuple[str, ...] = ()  # published anyway, but reported (check, healthz, logs)
    digest: str = ""  # content_hash(title, body), kept when the body is dropped (without_body)

    def without_body(self) -> NoteText:
        """The same note with its body dropped (a big scan re-reads it when it renders)."""
        return NoteText(header=self.header, body="", warnings=self.warnings,
                        digest=self.digest or content_hash(self.header.title, self.body))


def read_note(note: NoteFile, raw: bytes, settings: ContentSettings) -> NoteText:
    """Decode and read the front matter; raise a NoteError subclass naming the file."""
    src, path = note.source, note.rel_path
    text, removed = decode_note(raw, source=src, path=path)
    warnings = (f"{removed} control character(s) XML forbids were removed; note published",) \
        if removed else ()
    fm = split_front_matter(text, source=src, path=path)
    fields = fm.fields
    title = get_str(fields, "title", source=src, path=path) or first_h1(fm.body) or note.stem
    title = _SPACE.sub(" ", remove_forbidden_chars(title)).strip()[:MAX_TITLE_CHARS] or note.stem
    updated = get_datetime(fields, "updated", settings.tz, source=src, path=path)
    if updated is None:
        updated = get_datetime(fields, "lastmod", settings.tz, source=src, path=path)
    header = NoteHeader(
        title=title,
        category_name=get_str(fields, "category", source=src, path=path),
        published=get_datetime(fields, "date", settings.tz, source=src, path=path),
        updated=updated,
        note_id=get_str(fields, "id", source=src, path=path),
        is_draft=get_bool(fields, "draft", source=src, path=path),
        tags=get_tags(fields, source=src, path=path),
        summary=get_str(fields, "summary", source=src, path=path),
        author=get_str(fields, "author", source=src, path=path),
    )
    return NoteText(header=header, body=fm.body, warnings=warnings,
                    digest=content_hash(title, fm.body))


def read_body(note: NoteFile, raw: bytes) -> str:
    """The Markdown body of bytes read_note already accepted (same bytes: same body),
    without parsing the front matter again."""
    text, _ = decode_note(raw, source=note.source, path=note.rel_path)
    return body_after_front_matter(text)


def render_note(note: NoteFile, text: NoteText, *, entry_url: str, resolver: LinkResolver,
                settings: ContentSettings) -> ParsedNote:
    """Render the body to sanitized HTML and make the excerpt."""
    try:
        tokens = parse_markdown(text.body)
        context = RenderContext(source=note.source, rel_path=note.rel_path,
                                entry_url=entry_url, resolver=resolver)
        skip_h1 = opens_with_h1(tokens)
        html = render_html(tokens[3:] if skip_h1 else tokens, context)
        excerpt = make_excerpt(tokens, settings.excerpt, skip_opening_h1=True)
    except RecursionError:
        raise NoteError(note.source, note.rel_path, "Markdown nested too deeply to render") from None
    if text.header.summary:
        excerpt = plain_summary(text.header.summary)
    return ParsedNote(
        header=text.header,
        html=html,
        excerpt=excerpt,
        content_hash=content_hash(text.header.title, text.body),
        links=tuple(dict.fromkeys(context.links)),
    )


def parse_note(note: NoteFile, raw: bytes, settings: ContentSettings, *, entry_url: str,
               resolver: LinkResolver) -> ParsedNote:
    """Both steps at once, for callers that already know the entry's URL."""
    return render_note(note, read_note(note, raw, settings), entry_url=entry_url,
                       resolver=resolver, settings=settings)


def plain_summary(summary: str) -> str:
    """An author-written summary as plain text: tags stripped like any excerpt's."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", summary))).strip()


def content_hash(title: str, body: str) -> str:
    """What decides whether `updated` moves: the title and the body, nothing else."""
    digest = hashlib.sha256()
    digest.update(title.encode())
    digest.update(b"\0")
    digest.update(body.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def first_h1(body: str) -> str | None:
    """The first ATX level-1 heading outside fenced code, without parsing the whole note."""
    fence: str | None = None
    for line in body.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        match = _ATX_H1.match(line)
        if match:
            return match.group(1).strip() or None
    return None


def opens_with_h1(tokens: Sequence[Token]) -> bool:
    """A level-1 heading that opens the body is the title's: it is not repeated in content."""
    return bool(tokens) and tokens[0].type == "heading_open" and tokens[0].tag == "h1"
