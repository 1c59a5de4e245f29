"""Federation's read side through the app (serve.app.build_app with [activitypub] enabled):
WebFinger, NodeInfo, actors, outboxes, collections and objects, every bad input, content
negotiation, the handles on the pages, `feedsvc export`, and one real HTTP round trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.config import Config
from feedsvc.model import Follower
from feedsvc.scan.scanner import Scanner
from feedsvc.serve.app import build_app
from feedsvc.store import Store
from feedsvc.urls import object_key

from conftest import BASE_URL
from conftest import Clock
from conftest import LiveServer
from conftest import NotesDir
from conftest import with_base_url
from conftest import write_config

AP = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
HOST = "feeds.example.org"
ML = f"{BASE_URL}ap/actors/machine-learning"
CJK_PAGE = f"{BASE_URL}updates/category/{quote('行为识别')}/"
EXTRA = """
[activitypub]
enabled = true

[categories."行为识别"]
handle = "behaviour"
"""


@pytest.fixture
def config_path(tmp_path: Path, notes: NotesDir) -> Path:
    return write_config(tmp_path, notes.root, extra=EXTRA)


@pytest.fixture
def app(config: Config, store: Store, clock: Clock, scanner: Scanner) -> Any:
    app = build_app(config, store=store, clock=clock, scanner=scanner)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def site(notes: NotesDir, scanner: Scanner) -> None:
    """Three categories: ASCII slug, CJK slug with a configured handle, CJK with neither;
    and a future-dated note, which is nobody's business yet."""
    notes.write("Machine Learning/attention.md",
                "Attention: $x^2$, [a figure](fig.png).\n\n```python\nx = 1\n```\n",
                title="Attention", date="2026-01-10T08:00:00+08:00", tags=["deep learning", "AI"])
    notes.write("行为识别/gait.md", "步态。", title="步态", date="2026-01-11T08:00:00+08:00")
    notes.write("自然语言/tokens.md", "分词。", title="分词", date="2026-01-12T08:00:00+08:00")
    notes.write("Machine Learning/later.md", "Soon.", title="Later", date="2026-02-01")
    scanner.run()


def get_ap(client: Any, path: str, accept: str = AP) -> Any:
    return client.get(path, headers={"Accept": accept})


def error_of(response: Any) -> tuple[int, str, int]:
    body = response.get_json()
    assert set(body) == {"error", "status"}
    return response.status_code, response.mimetype, body["status"]


# -- WebFinger ----------------------------------------------------------------------------

def test_webfinger_of_a_category_with_an_ascii_slug(client: Any, site: None) -> None:
    response = client.get(f"/.well-known/webfinger?resource=acct:machine-learning@{HOST}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jrd+json; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.get_json() == {
        "subject": f"acct:machine-learning@{HOST}",
        "aliases": [f"{BASE_URL}updates/category/machine-learning/", ML],
        "links": [
            {"rel": "self", "type": AP, "href": ML},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": f"{BASE_URL}updates/category/machine-learning/"},
        ],
    }


def test_webfinger_of_a_cjk_category_with_a_configured_handle(client: Any, site: None) -> None:
    jrd = client.get(f"/.well-known/webfinger?resource=acct:behaviour@{HOST}").get_json()
    assert jrd["subject"] == f"acct:behaviour@{HOST}"
    assert jrd["aliases"] == [CJK_PAGE, f"{BASE_URL}ap/actors/behaviour"]
    # handles and the host compare without case; the answer names the handle as it is
    again = client.get(f"/.well-known/webfinger?resource=acct:Behaviour@FEEDS.Example.org")
    assert again.get_json() == jrd
    by_url = client.get(f"/.well-known/webfinger?resource={BASE_URL}ap/actors/behaviour")
    assert by_url.get_json() == jrd


def test_webfinger_of_the_site_actor(client: Any, site: None) -> None:
    jrd = client.get(f"/.well-known/webfinger?resource=acct:all@{HOST}").get_json()
    assert jrd["aliases"] == [BASE_URL, f"{BASE_URL}ap/actors/all"]
    assert jrd["links"][1]["href"] == BASE_URL


def test_a_category_with_neither_an_ascii_slug_nor_a_handle_has_no_actor(
        client: Any, site: None) -> None:
    for resource in (f"acct:自然语言@{HOST}", f"acct:{quote('自然语言')}@{HOST}",
                     f"{BASE_URL}ap/actors/{quote('自然语言')}"):
        response = client.get("/.well-known/webfinger", query_string={"resource": resource})
        assert error_of(response) == (404, "application/json", 404), resource
    assert error_of(get_ap(client, f"/ap/actors/{quote('自然语言')}")) == (404, "application/json", 404)


def test_webfinger_rel_narrows_the_links(client: Any, site: None) -> None:
    jrd = client.get(f"/.well-known/webfinger?resource=acct:all@{HOST}&rel=self").get_json()
    assert jrd["links"] == [{"rel": "self", "type": AP, "href": f"{BASE_URL}ap/actors/all"}]


@pytest.mark.parametrize("query", [
    "", "resource=", "resource=all", f"resource=all@{HOST}", "resource=acct:",
    "resource=acct:all", f"resource=acct:@{HOST}", "resource=acct:all@",
    f"resource=acct:all@x@{HOST}", f"resource=mailto:all@{HOST}", "resource=https://",
    "resource=ftp://feeds.example.org/ap/actors/all",
    f"resource=acct:all@{HOST}&resource=acct:ml@{HOST}",
    "resource=acct:" + "a" * 1000 + f"@{HOST}", "resource=acct:a%00b@" + HOST,
])
def test_a_missing_or_bad_resource_is_a_400(client: Any, site: None, query: str) -> None:
    assert error_of(client.get(f"/.well-known/webfinger?{query}")) == (400, "application/json", 400)


@pytest.mark.parametrize("resource", [
    "acct:all@other.example", f"acct:nobody@{HOST}", f"acct:all@{HOST}:8080",
    "https://other.example/ap/actors/all", f"{BASE_URL}ap/actors/nobody",
    f"{BASE_URL}ap/actors/all/outbox", f"{BASE_URL}updates",
])
def test_an_unknown_resource_is_a_404(client: Any, site: None, resource: str) -> None:
    response = client.get("/.well-known/webfinger", query_string={"resource": resource})
    assert error_of(response) == (404, "application/json", 404)


# -- NodeInfo -----------------------------------------------------------------------------

def test_nodeinfo(client: Any, site: None) -> None:
    links = client.get("/.well-known/nodeinfo")
    assert links.get_json() == {"links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
        "href": f"{BASE_URL}nodeinfo/2.1"}]}
    response = client.get("/nodeinfo/2.1")
    assert response.headers["Content-Type"] == \
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    from feedsvc import __version__
    assert response.get_json() == {
        "version": "2.1",
        "software": {"name": "feedsvc", "version": __version__},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": 3}, "localPosts": 3},  # all, machine-learning, behaviour
        "metadata": {"nodeName": "INCOMING TRANSMISSION",
                     "nodeDescription": "Notes, published as feeds"},
    }


# -- actors -------------------------------------------------------------------------------

def test_actor_document_with_a_key_made_once_and_kept(client: Any, site: None, store: Store,
                                                      config: Config) -> None:
    response = get_ap(client, "/ap/actors/machine-learning")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/activity+json; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    doc = response.get_json()
    stored = store.federation.key("machine-learning")
    assert stored is not None
    private_pem, public_pem = stored
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert doc["publicKey"] == {"id": ML + "#main-key", "owner": ML, "publicKeyPem": public_pem}
    assert "PRIVATE" not in response.get_data(as_text=True)
    assert [doc[k] for k in ("id", "type", "preferredUsername", "name", "url", "inbox",
                             "outbox", "followers", "following", "endpoints")] == [
        ML, "Service", "machine-learning", "Machine Learning",
        f"{BASE_URL}updates/category/machine-learning/", ML + "/inbox", ML + "/outbox",
        ML + "/followers", ML + "/following", {"sharedInbox": f"{BASE_URL}ap/inbox"}]
    assert "icon" not in doc  # the site has no favicon among its static assets
    other_process = build_app(config, store=store).test_client()
    assert get_ap(other_process, "/ap/actors/machine-learning", LD).get_json() == doc
    assert store.federation.key("machine-learning") == (private_pem, public_pem)


def test_the_site_actor_and_the_cjk_categorys_actor(client: Any, site: None) -> None:
    site_doc = get_ap(client, "/ap/actors/all").get_json()
    assert (site_doc["name"], site_doc["url"], site_doc["preferredUsername"]) == (
        "INCOMING TRANSMISSION", BASE_URL, "all")
    cjk = get_ap(client, "/ap/actors/behaviour").get_json()
    assert (cjk["name"], cjk["url"], cjk["id"]) == ("行为识别", CJK_PAGE,
                                                    f"{BASE_URL}ap/actors/behaviour")
    assert cjk["publicKey"]["publicKeyPem"] != site_doc["publicKey"]["publicKeyPem"]


@pytest.mark.parametrize("accept", [None, "text/html", "*/*", "application/json",
                                    "text/html,application/xhtml+xml,*/*;q=0.8",
                                    "application/activity+json;q=0"])
def test_a_browser_is_sent_to_the_page(client: Any, site: None, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    actor = client.get("/ap/actors/behaviour", headers=headers)
    assert (actor.status_code, actor.headers["Location"], actor.headers["Vary"]) == (
        302, CJK_PAGE, "Accept")
    assert client.get("/ap/actors/all", headers=headers).headers["Location"] == BASE_URL
    key = object_key("notes/Machine Learning/attention.md")
    entry = client.get(f"/ap/objects/{key}", headers=headers)
    assert (entry.status_code, entry.headers["Location"]) == (
        302, f"{BASE_URL}entries/machine-learning/attention")


@pytest.mark.parametrize("path", ["/ap/actors/nobody", "/ap/actors/nobody/outbox",
                                  "/ap/actors/nobody/followers", "/ap/actors/nobody/following",
                                  "/ap/actors/ALL", "/ap/actors/" + "x" * 5000,
                                  f"/ap/actors/{quote('行为识别')}/outbox"])
def test_an_unknown_actor_is_a_404(client: Any, site: None, path: str) -> None:
    assert error_of(get_ap(client, path)) == (404, "application/json", 404)


def test_followers_show_their_number_only_and_following_is_empty(
        client: Any, site: None, store: Store, clock: Clock) -> None:
    followers = get_ap(client, "/ap/actors/machine-learning/followers")
    assert followers.get_json() == {"@context": AS_CONTEXT, "id": ML + "/followers",
                                    "type": "OrderedCollection", "totalItems": 0}
    for name in ("a", "b"):
        store.federation.add_follower(Follower(
            actor="machine-learning", follower=f"https://social.example/users/{name}",
            inbox=f"https://social.example/users/{name}/inbox",
            shared_inbox="https://social.example/inbox", followed_at=clock()))
    assert get_ap(client, "/ap/actors/machine-learning/followers").get_json()["totalItems"] == 2
    assert get_ap(client, "/ap/actors/all/followers").get_json()["totalItems"] == 0
    assert get_ap(client, "/ap/actors/behaviour/following").get_json() == {
        "@context": AS_CONTEXT, "id": f"{BASE_URL}ap/actors/behaviour/following",
        "type": "OrderedCollection", "totalItems": 0, "orderedItems": []}


# -- outbox -------------------------------------------------------------------------------

@pytest.fixture
def many(notes: NotesDir, scanner: Scanner) -> None:
    """45 entries in one category, one a day, plus one elsewhere."""
    start = dt.date(2025, 11, 1)
    for i in range(45):
        day = start + dt.timedelta(days=i)
        notes.write(f"ML/n{i:02}.md", f"Note {i}.", title=f"Note {i:02}", date=day.isoformat())
    notes.write("Other/x.md", "x", title="Elsewhere", date="2025-10-01")
    scanner.run()


def test_outbox_pages_of_20_creates_newest_first(client: Any, many: None) -> None:
    outbox = f"{BASE_URL}ap/actors/ml/outbox"
    collection = get_ap(client, "/ap/actors/ml/outbox")
    assert collection.headers["Content-Type"] == "application/activity+json; charset=utf-8"
    assert collection.get_json() == {
        "@context": AS_CONTEXT, "id": outbox, "type": "OrderedCollection", "totalItems": 45,
        "first": outbox + "?page=1", "last": outbox + "?page=3"}
    pages = [get_ap(client, f"/ap/actors/ml/outbox?page={n}").get_json() for n in (1, 2, 3)]
    titles = [item["object"]["name"] for page in pages for item in page["orderedItems"]]
    assert titles == [f"Note {i:02}" for i in range(44, -1, -1)]
    assert [len(page["orderedItems"]) for page in pages] == [20, 20, 5]
    assert [(page.get("prev"), page.get("next")) for page in pages] == [
        (None, outbox + "?page=2"), (outbox + "?page=1", outbox + "?page=3"),
        (outbox + "?page=2", None)]
    assert {(p["type"], p["partOf"], p["totalItems"]) for p in pages} == {
        ("OrderedCollectionPage", outbox, 45)}
    first = pages[0]["orderedItems"][0]
    key = object_key("notes/ML/n44.md")
    assert first == {
        "id": f"{BASE_URL}ap/objects/{key}#create", "type": "Create",
        "actor": f"{BASE_URL}ap/actors/ml", "published": "2025-12-14T16:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{BASE_URL}ap/actors/ml/followers"],
        "object": {k: v for k, v in get_ap(client, f"/ap/objects/{key}").get_json().items()
                   if k != "@context"},
    }
    assert error_of(get_ap(client, "/ap/actors/ml/outbox?page=4")) == (404, "application/json", 404)


def test_the_site_actors_outbox_announces_every_category(client: Any, many: None) -> None:
    collection = get_ap(client, "/ap/actors/all/outbox").get_json()
    assert (collection["totalItems"], collection["last"]) == (
        46, f"{BASE_URL}ap/actors/all/outbox?page=3")
    last = get_ap(client, "/ap/actors/all/outbox?page=3").get_json()["orderedItems"]
    assert [(a["type"], a["actor"]) for a in last] == [
        ("Announce", f"{BASE_URL}ap/actors/all")] * 6
    assert last[-1]["object"] == f"{BASE_URL}ap/objects/{object_key('notes/Other/x.md')}"
    assert last[-1]["cc"] == [f"{BASE_URL}ap/actors/all/followers",
                              f"{BASE_URL}ap/actors/other"]


def test_an_empty_outbox_has_one_empty_page(client: Any, site: None) -> None:
    page = get_ap(client, "/ap/actors/behaviour/outbox?page=1").get_json()
    assert (page["totalItems"], len(page["orderedItems"])) == (1, 1)
    assert error_of(get_ap(client, "/ap/actors/behaviour/outbox?page=2"))[0] == 404


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "%201", "1e3", "٣", "9" * 40,
                                  "1&page=2", "1%00"])
def test_a_bad_page_is_a_400(client: Any, many: None, page: str) -> None:
    assert error_of(get_ap(client, f"/ap/actors/ml/outbox?page={page}")) == (
        400, "application/json", 400)


def test_the_same_page_given_twice_or_empty_is_fine(client: Any, many: None) -> None:
    assert get_ap(client, "/ap/actors/ml/outbox?page=2&page=2").get_json()["id"].endswith("page=2")
    assert get_ap(client, "/ap/actors/ml/outbox?page=").get_json()["type"] == "OrderedCollection"


# -- objects ------------------------------------------------------------------------------

def test_an_object_is_the_entrys_article_with_the_feeds_html(client: Any, site: None) -> None:
    key = object_key("notes/Machine Learning/attention.md")
    response = get_ap(client, f"/ap/objects/{key}")
    assert response.headers["Content-Type"] == "application/activity+json; charset=utf-8"
    article = response.get_json()
    feed = client.get("/feeds/machine-learning.json").get_json()
    item = next(i for i in feed["items"] if i["title"] == "Attention")
    assert "<math" in item["content_html"] and "<pre style=" in item["content_html"]
    assert f'href="{BASE_URL}media/notes/Machine%20Learning/fig.png"' in item["content_html"]
    assert article == {
        "@context": AS_CONTEXT,
        "id": f"{BASE_URL}ap/objects/{key}",
        "type": "Article",
        "attributedTo": ML,
        "name": "Attention",
        "content": item["content_html"],
        "url": f"{BASE_URL}entries/machine-learning/attention",
        "published": "2026-01-10T00:00:00Z",
        "updated": "2026-01-10T00:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [ML + "/followers"],
        "tag": [{"type": "Hashtag", "href": f"{BASE_URL}tags/deep-learning",
                 "name": "#deeplearning"},
                {"type": "Hashtag", "href": f"{BASE_URL}tags/ai", "name": "#AI"}],
    }


def test_an_entry_of_a_category_without_an_actor_is_the_site_actors(client: Any,
                                                                     site: None) -> None:
    article = get_ap(client, f"/ap/objects/{object_key('notes/自然语言/tokens.md')}").get_json()
    assert (article["attributedTo"], article["cc"]) == (
        f"{BASE_URL}ap/actors/all", [f"{BASE_URL}ap/actors/all/followers"])


@pytest.mark.parametrize("key", [
    object_key("notes/Machine Learning/later.md"),  # not published yet
    object_key("notes/nothing.md"), "0" * 32, "xyz",
    object_key("notes/Machine Learning/attention.md").upper(),
    object_key("notes/Machine Learning/attention.md") + "0",
])
def test_an_unknown_object_is_a_404(client: Any, site: None, key: str) -> None:
    assert error_of(get_ap(client, f"/ap/objects/{key}")) == (404, "application/json", 404)


def test_an_objects_url_survives_an_edit_and_a_rename(client: Any, notes: NotesDir,
                                                     scanner: Scanner, clock: Clock) -> None:
    notes.write("ML/a.md", "one", title="One", date="2026-01-01", id="note-7")
    scanner.run()
    path = f"/ap/objects/{object_key('note-7')}"
    assert get_ap(client, path).get_json()["url"] == f"{BASE_URL}entries/ml/a"
    clock.advance(hours=1)
    notes.remove("ML/a.md")
    notes.write("Other/b.md", "two", title="Two", date="2026-01-01", id="note-7")
    scanner.run()
    moved = get_ap(client, path).get_json()
    assert (moved["name"], moved["url"], moved["attributedTo"]) == (
        "Two", f"{BASE_URL}entries/other/b", f"{BASE_URL}ap/actors/other")


# -- pages, export, and the app without federation -----------------------------------------

def handles(html: str) -> list[str]:
    return re.findall(r"<code>(@[^<]+)</code>", html)


def ap_links(html: str) -> list[str]:
    return re.findall(r'<link rel="alternate" type="application/activity\+json" href="([^"]+)">',
                      html)


def test_pages_show_the_handles(client: Any, site: None) -> None:
    index = client.get("/").get_data(as_text=True)
    assert handles(index) == [f"@all@{HOST}", f"@machine-learning@{HOST}", f"@behaviour@{HOST}"]
    assert "follow from Mastodon: <code>@behaviour@feeds.example.org</code>" in index
    assert ap_links(index) == [f"{BASE_URL}ap/actors/all"]
    page = client.get("/updates/category/machine-learning/").get_data(as_text=True)
    assert (handles(page), ap_links(page)) == ([f"@machine-learning@{HOST}"], [ML])
    page = client.get(f"/updates/category/{quote('自然语言')}/").get_data(as_text=True)
    assert (handles(page), ap_links(page)) == ([], [])
    entry = client.get("/entries/machine-learning/attention").get_data(as_text=True)
    key = object_key("notes/Machine Learning/attention.md")
    assert (handles(entry), ap_links(entry)) == ([], [f"{BASE_URL}ap/objects/{key}"])


def test_without_activitypub_nothing_federates(config: Config, store: Store, clock: Clock,
                                               site: None) -> None:
    off = dataclasses.replace(config, activitypub=dataclasses.replace(config.activitypub,
                                                                      enabled=False))
    client = build_app(off, store=store, clock=clock).test_client()
    assert client.get(f"/.well-known/webfinger?resource=acct:all@{HOST}").status_code == 404
    assert get_ap(client, "/ap/actors/all").status_code == 404
    for path in ("/", "/updates/category/machine-learning/", "/entries/machine-learning/attention"):
        html = client.get(path).get_data(as_text=True)
        assert (handles(html), ap_links(html)) == ([], []), path


def test_export_pages_carry_the_handles(config_path: Path, notes: NotesDir,
                                        tmp_path: Path) -> None:
    notes.write("ML/a.md", "a", title="A", date="2025-01-01")
    out_dir = tmp_path / "public"
    result = CliRunner().invoke(main, ["export", str(out_dir), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    index = (out_dir / "index.html").read_text(encoding="utf-8")
    assert handles(index) == [f"@all@{HOST}", f"@ml@{HOST}"]


# -- a real HTTP round trip -----------------------------------------------------------------

def test_webfinger_actor_outbox_object_over_http(config: Config, store: Store, clock: Clock,
                                                 site: None) -> None:
    """What a Mastodon server does to follow @machine-learning@host and show its posts."""
    live = LiveServer()
    live.app = build_app(with_base_url(config, live.url + "/"), store=store, clock=clock)
    host = f"127.0.0.1:{live.port}"
    with live, requests.Session() as http:
        jrd = http.get(f"{live.url}/.well-known/webfinger",
                       params={"resource": f"acct:machine-learning@{host}"}, timeout=10)
        assert (jrd.status_code, jrd.headers["Content-Type"]) == (
            200, "application/jrd+json; charset=utf-8")
        self_link = next(link for link in jrd.json()["links"] if link["rel"] == "self")
        assert self_link["href"] == f"{live.url}/ap/actors/machine-learning"
        actor = http.get(self_link["href"], headers={"Accept": AP}, timeout=10).json()
        assert actor["preferredUsername"] == "machine-learning"
        outbox = http.get(actor["outbox"], headers={"Accept": AP}, timeout=10).json()
        assert outbox["totalItems"] == 1
        page = http.get(outbox["first"], headers={"Accept": AP}, timeout=10).json()
        create = page["orderedItems"][0]
        fetched = http.get(create["object"]["id"], headers={"Accept": LD}, timeout=10)
        assert fetched.status_code == 200
        assert fetched.json() == {"@context": AS_CONTEXT, **create["object"]}
        browser = http.get(create["object"]["id"], allow_redirects=False, timeout=10)
        assert (browser.status_code, browser.headers["Location"]) == (
            302, f"{live.url}/entries/machine-learning/attention")
    assert [(m, s) for m, p, s in live.log] == [("GET", 200)] * 5 + [("GET", 302)]
