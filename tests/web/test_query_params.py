"""No 500 on odd input: every query parameter of every endpoint (page, category, since on
/updates and /updates.json, page on /tags/<slug>, source on the webhook, and the same names
sent to endpoints that take none) with huge, negative, zero, non-numeric, empty, repeated and
odd values, over a real HTTP server; a 4xx names the parameter."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
import requests

from feedsvc.scan.scanner import Scanner
from feedsvc.web.webhook import sign

from conftest import LiveServer
from conftest import NotesDir

HUGE = "99999999999999999999"
ODD_NUMBERS = [HUGE, "9" * 5000, "-1", "0", "-0", "00", "abc", "", "1.5", "1e3", "+1", " 1",
               "1 ", "0x10", "1_000", "١", "½", "\x00", "1\x00", "%", "2" * 19, "NaN", "inf"]
ODD_DATES = ["0001-01-01", "9999-12-31", "2025-13-01", "2025-02-30", "99999-01-01", "2025-1-1",
             "2025-01-01T00:00:00", "20250101", "2025-W01-1", "yesterday", "", HUGE, "-1", "0",
             "\x00", "2025-01-01\x00", "x" * 5000]
ODD_SLUGS = ["nope", "", "all", "tag:x", "\x00", "nlp\x00", "../nlp", "%00", "x" * 5000,
             "NLP", " nlp", "<script>", HUGE, "-1", "0"]
READ_ENDPOINTS = ["/updates", "/updates.json"]
OTHER_ENDPOINTS = ["/", "/feeds/nlp.atom", "/feeds/tags/x.rss", "/feeds.opml", "/entries/nlp/a",
                   "/healthz", "/metrics", "/media/notes/NLP/img.png"]


@pytest.fixture
def site(live_server: LiveServer, notes: NotesDir) -> LiveServer:
    for i in range(15):
        notes.write(f"NLP/n{i}.md", f"正文 {i}", title=f"N{i}", date=f"2025-01-{i + 1:02}",
                    tags=["x"])
    notes.write("NLP/a.md", "a", title="A", date="2025-02-01")
    notes.write_bytes("NLP/img.png", b"\x89PNG\r\n\x1a\nfake")
    notes.write("Python/p.md", "p", title="P", date="2025-02-02")
    scanner: Scanner = live_server.app.extensions["feedsvc"].scanner
    scanner.run()
    return live_server


def message(response: requests.Response) -> str:
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return str(response.json()["error"])
    found = re.search(r"<h1>\d+</h1>\s*<p>(.*?)</p>", response.text, re.S)
    return unescape(found[1]) if found else response.text


def check(response: requests.Response, parameter: str) -> None:
    assert response.status_code < 500, (response.url, response.status_code, response.text[:300])
    if response.status_code >= 400:
        text = message(response)
        assert parameter in text, (response.url, text)
        assert len(text) < 300, "the message does not echo a huge value back"


def get(site: LiveServer, path: str, params: Any) -> requests.Response:
    return requests.get(site.url + path, params=params, timeout=20)


@pytest.mark.parametrize("path", READ_ENDPOINTS + ["/tags/x"])
def test_odd_page_values(site: LiveServer, path: str) -> None:
    for raw in ODD_NUMBERS:
        check(get(site, path, {"page": raw}), "page")
    check(get(site, path, [("page", "1"), ("page", "2")]), "page")
    check(get(site, path, [("page", HUGE), ("page", "-1")]), "page")


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_odd_since_and_category_values(site: LiveServer, path: str) -> None:
    for raw in ODD_DATES:
        check(get(site, path, {"since": raw}), "since")
    for raw in ODD_SLUGS:
        check(get(site, path, {"category": raw}), "category")
    check(get(site, path, [("since", "2025-01-01"), ("since", "2025-01-02")]), "since")
    check(get(site, path, [("category", "nlp"), ("category", "python")]), "category")
    check(get(site, path, {"page": HUGE, "since": "0001-01-01", "category": "\x00"}), "")


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_exact_answers(site: LiveServer, path: str) -> None:
    expected = {
        (("page", HUGE),): 404, (("page", "0"),): 404, (("page", "-1"),): 404,
        (("page", "abc"),): 404, (("page", ""),): 200, (("page", "2"),): 200,
        (("page", "3"),): 404, (("page", "１"),): 404, (("page", "9" * 5000),): 400,
        (("page", "1"), ("page", "2")): 400, (("page", "2"), ("page", "2")): 200,
        (("since", "0001-01-01"),): 200, (("since", "9999-12-31"),): 200,
        (("since", "2025-02-30"),): 404, (("since", ""),): 200,
        (("category", ""),): 200, (("category", "nope"),): 404, (("category", "all"),): 404,
        (("category", "tag:x"),): 404, (("category", "nlp"),): 200,
        (("unknown", HUGE),): 200,
    }
    for params, status in expected.items():
        response = get(site, path, list(params))
        assert response.status_code == status, (params, response.status_code, message(response))
    first = get(site, path, {"page": HUGE})
    assert message(first) == f"page: no page '{HUGE}'"
    assert message(get(site, path, {"page": "1.5"})) == \
        "page: must be a whole number from 1, got '1.5'"
    assert message(get(site, path, [("page", "1"), ("page", "2")])) == \
        "page: given more than once with different values"
    assert message(get(site, path, {"since": "2025-13-01"})) == \
        "since: must be a date YYYY-MM-DD, got '2025-13-01'"
    assert message(get(site, path, {"page": "3"})) == "page: no page 3; there are 2"
    # the zone of the oldest day that fits (Asia/Shanghai is ahead of UTC)
    assert get(site, path, {"since": "0001-01-01"}).status_code == 200


def test_webhook_source_values(site: LiveServer) -> None:
    scanner: Scanner = site.app.extensions["feedsvc"].scanner
    for params in [{"source": raw} for raw in ODD_SLUGS + ODD_NUMBERS] + [
            [("source", "notes"), ("source", "other")], [("source", "notes"), ("source", "notes")]]:
        response = requests.post(f"{site.url}/hooks/refresh", params=params, data=b"{}",
                                 headers={"X-Hub-Signature-256": sign("s3cret", b"{}")},
                                 timeout=20)
        check(response, "source")
        assert response.status_code in (202, 400, 404), (params, response.status_code)
    assert scanner.wait_idle(30)


@pytest.mark.parametrize("path", OTHER_ENDPOINTS)
def test_endpoints_without_parameters_ignore_them(site: LiveServer, path: str) -> None:
    for name in ("page", "since", "category", "source", "limit"):
        for raw in (HUGE, "-1", "", "\x00", "x" * 5000):
            response = get(site, path, {name: raw})
            assert response.status_code == 200, (path, name, raw, response.status_code)


@pytest.mark.parametrize("path", ["/feeds/%00.atom", "/feeds/nlp%00.rss", "/feeds/tags/%00.json",
                                  "/entries/%00/a", "/entries/nlp/%00", "/tags/%00",
                                  "/feeds/" + "x" * 5000 + ".atom", "/tags/" + "x" * 5000,
                                  "/media/notes/%00", "/feeds/nlp.%00"])
def test_odd_path_values_are_404(site: LiveServer, path: str) -> None:
    response = requests.get(site.url + path, timeout=20)
    assert response.status_code == 404, response.text[:200]


@pytest.mark.parametrize("header", [
    {"If-Modified-Since": "Mon, 01 Jan 99999 00:00:00 GMT"},
    {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 -2359"},
    {"If-Modified-Since": "Tue, 01 Jan 0001 00:00:00 +1400"},
    {"If-Modified-Since": "x" * 5000}, {"If-Modified-Since": ""},
    {"If-None-Match": ","}, {"If-None-Match": "W/"}, {"If-None-Match": '"' * 3000},
    {"Accept-Encoding": "br;q=nan, gzip;q=1e999"}, {"Accept-Encoding": "gzip;q="},
    {"Accept-Encoding": ";;;,,,"}])
def test_odd_headers_are_not_500(site: LiveServer, header: dict[str, str]) -> None:
    for path in ("/feeds/nlp.atom", "/feeds/tags/x.json", "/feeds.opml"):
        response = requests.get(site.url + path, headers=header, timeout=20)
        assert response.status_code in (200, 304), (path, header, response.status_code)
