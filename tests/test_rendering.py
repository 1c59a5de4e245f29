"""Parallel rendering gives exactly what serial rendering gives, errors included."""

from __future__ import annotations

import pickle

from feedsvc.content import ContentSettings
from feedsvc.content import read_note
from feedsvc.errors import NoteError
from feedsvc.errors import NoteTooLargeError
from feedsvc.model import NoteFile
from feedsvc.rendering import render_batch
from feedsvc.siteindex import SiteIndex
from feedsvc.urls import Urls


def test_parallel_equals_serial() -> None:
    settings = ContentSettings()
    index = SiteIndex(Urls("http://x.example/"))
    index.add_entry("s", "NLP/n3.md", "nlp", "n3")
    jobs = []
    for i in range(24):
        note = NoteFile(source="s", rel_path=f"NLP/n{i}.md", abs_path=str("x"), size=0, mtime_ns=0)
        body = f"# T{i}\n\n正文 {i} $x_{i}$ [[n3]]\n\n```python\nprint({i})\n```\n"
        jobs.append((note, read_note(note, body.encode(), settings), f"http://x.example/entries/nlp/n{i}"))
    serial = render_batch(jobs, index, settings, workers=1)
    parallel = render_batch(jobs * 20, index, settings, workers=2)
    assert parallel == serial * 20
    assert 'href="http://x.example/entries/nlp/n3"' in serial[0].html  # type: ignore[union-attr]


def test_note_errors_survive_pickling() -> None:
    error = NoteTooLargeError("s", "a/b.md", "too big")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, NoteError) and type(copy) is NoteTooLargeError
    assert (copy.source, copy.path, copy.reason) == ("s", "a/b.md", "too big")
