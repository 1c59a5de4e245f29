"""/healthz reports the whole serve's WebSub pings: under `feedsvc serve --workers 2` the
scanner process pings a stand-in hub on 127.0.0.1 (which accepts every feed but one), the
workers answer /healthz, and every answer carries the same, right counts."""

from __future__ import annotations

import mmap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from feedsvc.serve.interprocess import ERROR_BYTES
from feedsvc.serve.interprocess import SHARED_BYTES
from feedsvc.serve.interprocess import SharedPingTally
from feedsvc.web.websub import PingOutcome
from feedsvc.web.websub import WebSubStats
from feedsvc.web.webhook import sign

from conftest import Hub
from conftest import NotesDir
from conftest import write_config
from test_live_http import free_port
from test_live_http import health
from test_live_http import start_serve
from test_live_http import stop
from test_live_http import wait_for

REFUSED_FEED = "/feeds/python.json"  # the hub answers 500 to this feed's pings, 204 to others


def websub_health(port: int) -> dict[str, Any]:
    """The "websub" block of /healthz, over a new connection (so any worker may answer)."""
    response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5,
                            headers={"Connection": "close"})
    assert response.status_code == 200
    block: dict[str, Any] = response.json()["websub"]
    return block


@pytest.mark.slow
def test_every_worker_reports_the_pings_the_scanner_sent(tmp_path: Path,
                                                         notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", title="First", date="2025-01-01")
    with Hub(status=lambda feed: 500 if feed.endswith(REFUSED_FEED) else 204) as hub:
        extra = f'[scheduler]\npoll_seconds = 0\n\n[websub]\nhubs = ["{hub.url}"]\n'
        config_path = write_config(tmp_path, notes.root, extra=extra)
        port = free_port()
        log = tmp_path / "serve.log"
        process = start_serve(config_path, port, log)
        try:
            wait_for(lambda: (health(port) or {}).get("last_scan"), timeout=30, interval=0.2)
            # the start-up scan made feeds all and nlp: 3 formats each, every ping accepted
            after_startup = {"hubs": 1, "sent": 6, "failed": 0, "dropped": 0, "last_error": None}
            wait_for(lambda: websub_health(port) == after_startup, timeout=15, interval=0.1)
            notes.write("Python/p.md", "p", title="Second", date="2025-01-02")
            body = b"{}"
            response = requests.post(f"http://127.0.0.1:{port}/hooks/refresh", data=body,
                                     timeout=5, headers={"X-Hub-Signature-256": sign("s3cret",
                                                                                     body)})
            assert response.status_code == 202
            # all and python changed: 5 more accepted; python.json refused on all 4 attempts
            # (1 s, 2 s and 4 s apart), then counted as one failed ping
            expected = {"hubs": 1, "sent": 11, "failed": 1, "dropped": 0,
                        "last_error": "HTTP 500"}
            wait_for(lambda: websub_health(port) == expected, timeout=40, interval=0.2)
            answers = [websub_health(port) for _ in range(40)]
            assert answers == [expected] * 40
        finally:
            stop(process)
    assert hub.statuses == Counter({204: 11, 500: 4})
    assert sorted({ping["hub.url"] for ping in hub.pings}) == sorted(f"http://feeds.example.org/feeds/{slug}.{fmt}"
                                            for slug in ("all", "nlp", "python")
                                            for fmt in ("atom", "json", "rss"))
    text = log.read_text(errors="replace")
    assert text.count("scanner started") == 1
    assert "Traceback" not in text


def test_the_shared_tally_keeps_counts_and_the_last_error() -> None:
    tally = SharedPingTally(mmap.mmap(-1, SHARED_BYTES))
    assert tally.read() == WebSubStats()
    outcomes: tuple[PingOutcome, ...] = ("sent", "sent", "failed", "dropped", "sent")
    for outcome in outcomes:
        tally.count(outcome)
    tally.note_error("HTTP 500")
    tally.note_error("ConnectTimeout")  # a shorter error replaces a longer one whole
    assert tally.read() == WebSubStats(sent=3, failed=1, dropped=1, last_error="ConnectTimeout")
    tally.note_error("错" * ERROR_BYTES)  # cut to ERROR_BYTES, never inside a character
    assert tally.read().last_error == "错" * (ERROR_BYTES // 3)
