"""/metrics read with prometheus_client's own parser: counters move with real HTTP requests, a
304, webhooks, a scan, WebSub pings and the lease; the token guard; and multiprocess mode, with
two real `feedsvc serve` processes sharing one PROMETHEUS_MULTIPROC_DIR summed by either."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from feedsvc import metrics
from feedsvc.config import load_config
from feedsvc.scan.scanner import Scanner
from feedsvc.serve.scheduler import FeedScheduler
from feedsvc.store import open_store
from feedsvc.web import create_app
from feedsvc.web.webhook import sign
from feedsvc.model import ScanJob

from conftest import Hub
from conftest import REPO
from conftest import LiveServer
from conftest import NotesDir
from conftest import with_base_url
from conftest import write_config
from test_live_http import free_port
from test_live_http import stop
from test_live_http import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FEED_ROUTE = "/feeds/<slug>.<ext>"


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def post_hook(url: str, body: bytes = b"{}", **headers: str) -> requests.Response:
    headers.setdefault("X-Hub-Signature-256", sign("s3cret", body))
    return requests.post(f"{url}/hooks/refresh", data=body, headers=headers, timeout=10)


def test_counters_move_with_requests_a_304_a_webhook_and_a_scan(live_server: LiveServer,
                                                                notes: NotesDir) -> None:
    url = live_server.url
    scanner: Scanner = live_server.app.extensions["feedsvc"].scanner
    notes.write("NLP/a.md", "a", title="A", date="2025-01-01")
    notes.write("NLP/bad.md", "---\ntitle: [unclosed\n---\nx")
    before = scrape(url)
    assert post_hook(url).json()["status"] == "started"
    assert scanner.wait_idle(15)
    assert post_hook(url, **{"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 401
    assert post_hook(url).status_code == 202
    assert scanner.wait_idle(15)
    first = requests.get(f"{url}/feeds/nlp.atom", headers={"Accept-Encoding": "identity"},
                         timeout=10)
    assert first.status_code == 200
    again = requests.get(f"{url}/feeds/nlp.atom", timeout=10,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert requests.head(f"{url}/feeds/nlp.atom", timeout=10).status_code == 200
    assert requests.get(f"{url}/no/such/path", timeout=10).status_code == 404
    assert requests.request("BREW", f"{url}/feeds/nlp.atom", timeout=10).status_code == 405
    after = scrape(url)

    assert moved(before, after, "feedsvc_http_requests_total", route=FEED_ROUTE, method="GET",
                 status="200") == 1
    assert moved(before, after, "feedsvc_http_requests_total", route=FEED_ROUTE, method="GET",
                 status="304") == 1
    assert moved(before, after, "feedsvc_http_requests_total", route=FEED_ROUTE, method="HEAD",
                 status="200") == 1
    assert moved(before, after, "feedsvc_http_not_modified_total", route=FEED_ROUTE) == 1
    assert moved(before, after, "feedsvc_http_response_bytes_total", route=FEED_ROUTE) == \
        len(first.content)  # the 304 and the HEAD sent no body
    assert moved(before, after, "feedsvc_http_requests_total", route="unmatched", method="GET",
                 status="404") == 1
    assert moved(before, after, "feedsvc_http_requests_total", route="unmatched",
                 method="other", status="405") == 1
    assert moved(before, after, "feedsvc_http_requests_total", route="/hooks/refresh",
                 method="POST", status="202") == 2
    assert moved(before, after, "feedsvc_http_requests_total", route="/hooks/refresh",
                 method="POST", status="401") == 1
    assert moved(before, after, "feedsvc_http_request_duration_seconds_count",
                 route=FEED_ROUTE) == 3
    assert moved(before, after, "feedsvc_webhooks_total", outcome="started") == 2
    assert moved(before, after, "feedsvc_webhooks_total", outcome="unauthorized") == 1
    assert moved(before, after, "feedsvc_scans_total", trigger="webhook") == 2
    assert moved(before, after, "feedsvc_scan_duration_seconds_count", trigger="webhook") == 2
    assert moved(before, after, "feedsvc_scan_notes_total", change="added") == 1
    assert value(after, "feedsvc_skipped_files") == 1
    assert value(after, "feedsvc_last_scan_timestamp_seconds") > 1.7e9

    # a source that cannot be read is counted as a source error
    notes.root.rename(notes.root.with_name("gone"))
    scanner.run(ScanJob(reason="poll"))
    notes.root.with_name("gone").rename(notes.root)
    final = scrape(url)
    assert moved(after, final, "feedsvc_source_errors_total", source="notes") == 1
    assert moved(after, final, "feedsvc_scans_total", trigger="poll") == 1


def test_websub_pings_and_failures_are_counted(tmp_path: Path, notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    with Hub() as good, Hub(status=500) as bad:
        extra = f'[websub]\nhubs = ["{good.url}", "{bad.url}"]\n'
        config = load_config(write_config(tmp_path, notes.root, extra=extra), env={})
        store = open_store(config.store_url)
        app = create_app(config, store=store)
        services = app.extensions["feedsvc"]
        services.websub.backoff = 0.01
        services.websub.attempts = 2
        before = parse(metrics.exposition().decode())
        services.scanner.run()  # two feeds change (all, nlp): 3 formats each, to each hub
        assert services.websub.join(20)
        after = parse(metrics.exposition().decode())
        store.close()
    assert moved(before, after, "feedsvc_websub_pings_total", outcome="sent") == 6
    assert moved(before, after, "feedsvc_websub_pings_total", outcome="failed") == 6
    assert moved(before, after, "feedsvc_websub_ping_attempt_failures_total") == 12


def test_lease_gauge_follows_the_scheduler(scanner: Scanner) -> None:
    scheduler = FeedScheduler(scanner, poll_seconds=0)
    assert scheduler.heartbeat() is True
    assert value(parse(metrics.exposition().decode()), "feedsvc_scanner_lease_held") == 1
    scheduler.shutdown()
    assert value(parse(metrics.exposition().decode()), "feedsvc_scanner_lease_held") == 0


@pytest.fixture
def token_server(tmp_path: Path, notes: NotesDir) -> Iterator[LiveServer]:
    path = write_config(tmp_path, notes.root, name="t.toml", extra='[metrics]\ntoken = "t0k3n"\n')
    config = load_config(path, env={})
    store = open_store(config.store_url)
    live = LiveServer()
    live.app = create_app(with_base_url(config, live.url + "/"), store=store)
    with live:
        yield live
    store.close()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer ", "Basic dDBrM24=",
                                           "t0k3n", "Bearer t0k3n2", "Bearer t0k"])
def test_token_guards_metrics(token_server: LiveServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = requests.get(f"{token_server.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "feedsvc_" not in response.text


def test_right_token_opens_metrics(token_server: LiveServer) -> None:
    samples = scrape(token_server.url, token="t0k3n")
    assert any(name == "feedsvc_http_requests_total" for name, _ in samples)
    assert load_config(token_server.app.extensions["feedsvc"].config.path, env={
        "FEEDSVC_METRICS_TOKEN": "other"}).metrics.token == "other"


# -- several processes --------------------------------------------------------------------

def _child_records(done: Any) -> None:
    metrics.set_scanner_lease(True)
    metrics.record_request("/healthz", "GET", 200, 10, 0.01)
    done.set()


def test_multiprocess_mode_sums_forked_processes_and_forgets_dead_gauges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    # set after feedsvc.metrics was imported, as `feedsvc serve` may do before forking
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    try:
        metrics.record_request("/healthz", "GET", 200, 5, 0.01)
        context = multiprocessing.get_context("fork")
        done = context.Event()
        child = context.Process(target=_child_records, args=(done,))
        child.start()
        child.join(20)
        assert child.exitcode == 0 and done.is_set()
        samples = parse(metrics.exposition().decode())
        assert value(samples, "feedsvc_http_requests_total", route="/healthz", method="GET",
                     status="200") == 2
        assert value(samples, "feedsvc_http_response_bytes_total", route="/healthz") == 15
        assert value(samples, "feedsvc_scanner_lease_held") == 1
        metrics.worker_exited(child.pid or 0)
        samples = parse(metrics.exposition().decode())
        assert value(samples, "feedsvc_scanner_lease_held") == 0  # the dead holder is gone
        assert value(samples, "feedsvc_http_requests_total", route="/healthz", method="GET",
                     status="200") == 2  # counters keep what dead workers counted
    finally:
        monkeypatch.delenv(metrics.MULTIPROC_ENV)
        metrics.current()  # back to single-process mode for the tests that follow


def start_serve(config_path: Path, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--config", str(config_path),
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **env})


@pytest.mark.slow
def test_two_serve_processes_sharing_one_multiproc_dir_are_summed(tmp_path: Path,
                                                                   notes: NotesDir) -> None:
    notes.write("NLP/a.md", "a", date="2025-01-01")
    directory = tmp_path / "prom"
    directory.mkdir()
    config_path = write_config(tmp_path, notes.root, extra="[scheduler]\npoll_seconds = 0\n")
    ports = [free_port(), free_port()]
    env = {metrics.MULTIPROC_ENV: str(directory)}
    processes = [start_serve(config_path, port, tmp_path / f"serve{i}.log", env)
                 for i, port in enumerate(ports)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        def both_scanned() -> Samples | None:
            try:
                samples = scrape(urls[0])
            except requests.ConnectionError:
                return None
            # one scanner per store: only the serve that takes the lease scans at start
            ready = value(samples, "feedsvc_scans_total", trigger="startup") == 1
            return samples if ready and value(samples, "feedsvc_scanner_lease_held") == 1 else None
        before = wait_for(both_scanned, timeout=40, interval=0.2)
        def second_up() -> bool:
            try:
                return requests.get(f"{urls[1]}/healthz", timeout=5).status_code == 200
            except requests.ConnectionError:  # not listening yet
                return False

        wait_for(second_up, timeout=40, interval=0.2)
        for url, count in ((urls[0], 3), (urls[1], 2)):
            for _ in range(count):
                assert requests.get(f"{url}/feeds/nlp.atom", timeout=10).status_code == 200
        for url in urls:  # either process shows the sum of both
            after = scrape(url)
            assert moved(before, after, "feedsvc_http_requests_total", route=FEED_ROUTE,
                         method="GET", status="200") == 5
            assert value(after, "feedsvc_scans_total", trigger="startup") == 1
            assert value(after, "feedsvc_scanner_lease_held") == 1
        # each process that counted writes its own file there: the scanning process and at
        # least one worker of each serve (which worker takes a request is the server's choice)
        counter_files = [p.name for p in directory.iterdir() if p.name.startswith("counter_")]
        assert len(counter_files) >= 3
    finally:
        for process in processes:
            stop(process)
    logs = "".join((tmp_path / f"serve{i}.log").read_text() for i in range(2))
    assert "Traceback" not in logs
