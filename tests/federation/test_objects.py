"""federation/objects.py: every document as exact JSON, from data alone (no app, no store),
plus the URL builders, the handle rule and the choice of actors that the documents use."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from feedsvc.config import Config
from feedsvc.config import SiteConfig
from feedsvc.config import build_config
from feedsvc.config import category_handle
from feedsvc.federation import objects
from feedsvc.federation.actors import NO_HANDLE
from feedsvc.federation.actors import SITE_HANDLE
from feedsvc.federation.actors import TAKEN
from feedsvc.federation.actors import Actor
from feedsvc.federation.actors import ActorDirectory
from feedsvc.federation.actors import Unfollowable
from feedsvc.federation.actors import plan_actors
from feedsvc.model import Category
from feedsvc.model import Entry
from feedsvc.urls import Urls
from feedsvc.urls import object_key

BASE = "https://notes.example/"
URLS = Urls(BASE)
SITE = SiteConfig(title="INCOMING TRANSMISSION", base_url=BASE, description="Notes, published")
ML = Category(name="Machine Learning", slug="machine-learning")
ML_ACTOR = Actor(handle="machine-learning", name="Machine Learning", category=ML)
SITE_ACTOR = Actor(handle="all", name="INCOMING TRANSMISSION")
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def make_entry(**changes: object) -> Entry:
    fields: dict[str, object] = dict(
        id="notes/Machine Learning/attention.md", source="notes",
        rel_path="Machine Learning/attention.md", category=ML, slug="attention",
        title="Attention, <again>",
        published=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        updated=dt.datetime(2026, 1, 3, 0, 0, 0, 999, tzinfo=dt.timezone.utc),
        html='<p>x <math><mi>x</mi></math> <a href="https://notes.example/media/notes/a.png">a</a></p>',
        excerpt="x [Math] a", content_hash="h",
        tags=("deep learning", "AI", "Deep Learning", "!!!"))
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def config_of(raw: dict[str, object]) -> Config:
    return build_config(raw, base_dir=Path("."))


# -- URLs -------------------------------------------------------------------------------

def test_object_key_is_the_first_32_hex_of_the_ids_sha256() -> None:
    assert object_key("notes/ml/a.md") == "2876244c8432b1ebd9316b47492137d4"
    assert object_key("notes/机器学习/b.md") == "d06d4b9424dfaa1cbf053f850f9b0fad"
    assert URLS.object("note-7") == "https://notes.example/ap/objects/675edad72a7dea4a4df206998a171552"


def test_federation_urls() -> None:
    assert URLS.actor("ml") == "https://notes.example/ap/actors/ml"
    assert URLS.actor_inbox("ml") == "https://notes.example/ap/actors/ml/inbox"
    assert URLS.outbox("ml") == "https://notes.example/ap/actors/ml/outbox"
    assert URLS.outbox("ml", page=3) == "https://notes.example/ap/actors/ml/outbox?page=3"
    assert URLS.followers("ml") == "https://notes.example/ap/actors/ml/followers"
    assert URLS.following("ml") == "https://notes.example/ap/actors/ml/following"
    assert URLS.shared_inbox() == "https://notes.example/ap/inbox"
    assert URLS.webfinger() == "https://notes.example/.well-known/webfinger"
    assert URLS.nodeinfo() == "https://notes.example/nodeinfo/2.1"
    assert URLS.acct("ml") == "ml@notes.example"


@pytest.mark.parametrize(("base", "host"), [
    ("https://notes.example/", "notes.example"),
    ("http://127.0.0.1:8080/", "127.0.0.1:8080"),
    ("https://Notes.Example:8443/blog/", "notes.example:8443"),
    ("http://[::1]:8080/", "[::1]:8080"),
])
def test_the_acct_host_is_the_base_urls_host_with_its_port(base: str, host: str) -> None:
    assert Urls(base).host == host


# -- which actors exist -------------------------------------------------------------------

@pytest.mark.parametrize(("slug", "name", "categories", "expected"), [
    ("machine-learning", "Machine Learning", {}, "machine-learning"),
    ("a_b.c-d", "X", {}, "a_b.c-d"),
    ("行为识别", "行为识别", {}, None),
    ("行为识别", "行为识别", {"行为识别": {"handle": "behaviour"}}, "behaviour"),
    ("ml", "ML", {"ML": {"handle": "learning"}}, "learning"),  # the configured one first
    ("ml", "ML", {"ML": {"slug": "ml"}}, "ml"),
    ("-x", "X", {}, None),
    ("Big", "Big", {}, None),
    ("all", "All", {}, None),  # the site actor's
    ("行为识别", "行为识别", {"行为识别": {"handle": "all"}}, None),
])
def test_category_handle(slug: str, name: str, categories: dict[str, object],
                         expected: str | None) -> None:
    assert category_handle(slug, name, config_of({"categories": categories})) == expected


def test_plan_actors_one_per_category_with_a_handle() -> None:
    config = config_of({"categories": {"行为识别": {"handle": "behaviour"},
                                       "机器学习": {"handle": "ml"}},
                        "activitypub": {"site_handle": "everything"}})
    cjk = Category(name="行为识别", slug="行为识别")
    bare = Category(name="自然语言", slug="自然语言")
    clash = Category(name="机器学习", slug="机器学习")
    ml = Category(name="ML", slug="ml")
    site_named = Category(name="Everything", slug="everything")
    planned = plan_actors(config, [ml, cjk, bare, clash, site_named])
    assert planned.site == Actor(handle="everything", name="INCOMING TRANSMISSION")
    assert planned.categories == (
        Actor(handle="ml", name="ML", category=ml),
        Actor(handle="behaviour", name="行为识别", category=cjk),
    )
    assert planned.unfollowable == (
        Unfollowable(category=site_named, reason=SITE_HANDLE),
        Unfollowable(category=clash, reason=TAKEN),  # "ml" < "机器学习": ML keeps the handle
        Unfollowable(category=bare, reason=NO_HANDLE),
    )
    assert [a.handle for a in planned.all] == ["everything", "ml", "behaviour"]
    assert planned.get("behaviour") == planned.categories[1]
    assert planned.get("BEHAVIOUR") is None and planned.get("自然语言") is None
    assert planned.of_category("行为识别") == planned.categories[1]
    assert planned.author_of(bare) == planned.site
    assert planned.author_of(ml) == planned.categories[0]


class MemoryKeys:
    """store.federation's key keeping, in memory; `race` pretends another process saved
    its pair between our read and our save."""

    def __init__(self, race: tuple[str, str] | None = None) -> None:
        self.pairs: dict[str, tuple[str, str]] = {}
        self.race = race
        self.reads = 0

    def key(self, handle: str) -> tuple[str, str] | None:
        self.reads += 1
        return self.pairs.get(handle)

    def save_key(self, handle: str, private_pem: str, public_pem: str,
                 now: dt.datetime) -> tuple[str, str]:
        if self.race is not None:
            self.pairs.setdefault(handle, self.race)
        return self.pairs.setdefault(handle, (private_pem, public_pem))


class Categories:
    def __init__(self, categories: tuple[Category, ...]) -> None:
        self.listed = [(c, 1) for c in categories]

    def categories(self, now: dt.datetime) -> list[tuple[Category, int]]:
        return self.listed

    def revision(self) -> int:
        return len(self.listed)


def directory(keys: MemoryKeys, generated: list[int],
              categories: tuple[Category, ...] = ()) -> ActorDirectory:
    def generate() -> tuple[str, str]:
        generated.append(1)
        return f"PRIVATE {len(generated)}", f"PUBLIC {len(generated)}"
    return ActorDirectory(config_of({}), Categories(categories),
                          lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), keys=keys,
                          generate_key_pair=generate)


def test_a_key_pair_is_made_once_per_actor_and_kept() -> None:
    keys, generated = MemoryKeys(), []
    first = directory(keys, generated)
    assert first.key_pair("ml") == ("PRIVATE 1", "PUBLIC 1")
    assert first.public_key_pem("ml") == "PUBLIC 1"
    assert first.public_key_pem("all") == "PUBLIC 2"
    assert directory(keys, generated).public_key_pem("ml") == "PUBLIC 1"  # another process
    assert generated == [1, 1]
    reads = keys.reads
    first.public_key_pem("ml")
    assert keys.reads == reads  # kept in memory: a pair never changes


def test_a_key_pair_saved_by_a_racing_process_wins() -> None:
    keys = MemoryKeys(race=("PRIVATE theirs", "PUBLIC theirs"))
    assert directory(keys, []).key_pair("ml") == ("PRIVATE theirs", "PUBLIC theirs")


def test_a_category_without_an_actor_is_logged_once_naming_the_key(
        caplog: pytest.LogCaptureFixture) -> None:
    cjk = Category(name="行为识别", slug="行为识别")
    found = directory(MemoryKeys(), [], (cjk, ML))
    with caplog.at_level(logging.WARNING, logger="feedsvc.federation.actors"):
        for _ in range(3):
            assert [a.handle for a in found.actors().all] == ["all", "machine-learning"]
    assert [r.getMessage() for r in caplog.records] == [
        "category has no ActivityPub actor: category=行为识别 slug=行为识别 "
        f'reason={NO_HANDLE} key=categories."行为识别".handle']


# -- documents ----------------------------------------------------------------------------

def test_actor_document_of_a_category() -> None:
    doc = objects.actor_document(ML_ACTOR, public_key_pem=PEM, urls=URLS, site=SITE)
    assert doc == {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": "https://notes.example/ap/actors/machine-learning",
        "type": "Service",
        "preferredUsername": "machine-learning",
        "name": "Machine Learning",
        "summary": '<p>New notes in Machine Learning on '
                   '<a href="https://notes.example/">INCOMING TRANSMISSION</a>.</p>',
        "url": "https://notes.example/updates/category/machine-learning/",
        "inbox": "https://notes.example/ap/actors/machine-learning/inbox",
        "outbox": "https://notes.example/ap/actors/machine-learning/outbox",
        "followers": "https://notes.example/ap/actors/machine-learning/followers",
        "following": "https://notes.example/ap/actors/machine-learning/following",
        "endpoints": {"sharedInbox": "https://notes.example/ap/inbox"},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "publicKey": {"id": "https://notes.example/ap/actors/machine-learning#main-key",
                      "owner": "https://notes.example/ap/actors/machine-learning",
                      "publicKeyPem": PEM},
    }


def test_actor_document_of_the_site_with_an_icon() -> None:
    site = SiteConfig(title="A & B", base_url=BASE, description="<Notes>")
    icon = objects.Icon(url="https://notes.example/static/favicon.png", media_type="image/png")
    doc = objects.actor_document(Actor(handle="all", name="A & B"), public_key_pem=PEM,
                                 urls=URLS, site=site, icon=icon)
    assert (doc["name"], doc["url"], doc["summary"], doc["icon"]) == (
        "A & B", "https://notes.example/",
        '<p>&lt;Notes&gt;: every new note on <a href="https://notes.example/">A &amp; B</a>.</p>',
        {"type": "Image", "mediaType": "image/png",
         "url": "https://notes.example/static/favicon.png"})
    assert list(doc)[:9] == ["@context", "id", "type", "preferredUsername", "name", "summary",
                             "url", "icon", "inbox"]


def test_article() -> None:
    entry = make_entry()
    key = object_key(entry.id)
    assert objects.article(entry, author=ML_ACTOR, urls=URLS) == {
        "id": f"https://notes.example/ap/objects/{key}",
        "type": "Article",
        "attributedTo": "https://notes.example/ap/actors/machine-learning",
        "name": "Attention, <again>",
        "content": entry.html,
        "url": "https://notes.example/entries/machine-learning/attention",
        "published": "2026-01-01T19:04:05Z",
        "updated": "2026-01-03T00:00:00Z",
        "to": [PUBLIC],
        "cc": ["https://notes.example/ap/actors/machine-learning/followers"],
        "tag": [
            {"type": "Hashtag", "href": "https://notes.example/tags/deep-learning",
             "name": "#deeplearning"},
            {"type": "Hashtag", "href": "https://notes.example/tags/ai", "name": "#AI"},
        ],
    }


def test_the_article_id_survives_edits_renames_and_moves() -> None:
    before = objects.article(make_entry(), author=ML_ACTOR, urls=URLS)
    moved = make_entry(slug="attention-2", title="New", html="<p>new</p>",
                       category=Category(name="NLP", slug="nlp"), rel_path="NLP/x.md",
                       updated=dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    after = objects.article(moved, author=SITE_ACTOR, urls=URLS)
    assert after["id"] == before["id"]
    assert after["url"] == "https://notes.example/entries/nlp/attention-2"
    assert after["attributedTo"] == "https://notes.example/ap/actors/all"
    assert after["cc"] == ["https://notes.example/ap/actors/all/followers"]


def test_create_wraps_the_article() -> None:
    entry = make_entry(tags=())
    article = objects.article(entry, author=ML_ACTOR, urls=URLS)
    assert objects.create_activity(entry, author=ML_ACTOR, urls=URLS) == {
        "id": article["id"] + "#create",
        "type": "Create",
        "actor": "https://notes.example/ap/actors/machine-learning",
        "published": "2026-01-01T19:04:05Z",
        "to": [PUBLIC],
        "cc": ["https://notes.example/ap/actors/machine-learning/followers"],
        "object": {**article, "tag": []},
    }


def test_announce_update_and_delete() -> None:
    entry = make_entry()
    obj = URLS.object(entry.id)
    assert objects.announce_activity(entry, site=SITE_ACTOR, author=ML_ACTOR, urls=URLS) == {
        "id": obj + "#announce", "type": "Announce",
        "actor": "https://notes.example/ap/actors/all",
        "published": "2026-01-01T19:04:05Z", "to": [PUBLIC],
        "cc": ["https://notes.example/ap/actors/all/followers",
               "https://notes.example/ap/actors/machine-learning"],
        "object": obj,
    }
    update = objects.update_activity(entry, author=ML_ACTOR, urls=URLS)
    assert {k: v for k, v in update.items() if k != "object"} == {
        "id": obj + "#update-20260103T000000Z", "type": "Update",
        "actor": "https://notes.example/ap/actors/machine-learning",
        "published": "2026-01-03T00:00:00Z", "to": [PUBLIC],
        "cc": ["https://notes.example/ap/actors/machine-learning/followers"]}
    assert update["object"] == objects.article(entry, author=ML_ACTOR, urls=URLS)
    assert objects.delete_activity(entry.id, author=ML_ACTOR, audience=[ML_ACTOR, SITE_ACTOR],
                                   urls=URLS) == {
        "id": obj + "#delete", "type": "Delete",
        "actor": "https://notes.example/ap/actors/machine-learning", "to": [PUBLIC],
        "cc": ["https://notes.example/ap/actors/machine-learning/followers",
               "https://notes.example/ap/actors/all/followers"],
        "object": {"id": obj, "type": "Tombstone"},
    }


def test_outbox_collection_and_pages() -> None:
    outbox = "https://notes.example/ap/actors/machine-learning/outbox"
    context = "https://www.w3.org/ns/activitystreams"
    assert objects.outbox_collection(ML_ACTOR, total=45, urls=URLS) == {
        "@context": context, "id": outbox, "type": "OrderedCollection", "totalItems": 45,
        "first": outbox + "?page=1", "last": outbox + "?page=3"}
    assert objects.outbox_collection(ML_ACTOR, total=0, urls=URLS)["last"] == outbox + "?page=1"
    items = [{"id": "x"}]
    assert objects.outbox_page(ML_ACTOR, page=1, total=45, items=items, urls=URLS) == {
        "@context": context, "id": outbox + "?page=1", "type": "OrderedCollectionPage",
        "partOf": outbox, "totalItems": 45, "next": outbox + "?page=2", "orderedItems": items}
    middle = objects.outbox_page(ML_ACTOR, page=2, total=45, items=items, urls=URLS)
    assert (middle["prev"], middle["next"]) == (outbox + "?page=1", outbox + "?page=3")
    last = objects.outbox_page(ML_ACTOR, page=3, total=45, items=items, urls=URLS)
    assert "next" not in last and last["prev"] == outbox + "?page=2"
    assert [objects.page_count(n) for n in (0, 1, 20, 21, 40, 45)] == [1, 1, 1, 2, 2, 3]


def test_followers_and_following() -> None:
    context = "https://www.w3.org/ns/activitystreams"
    assert objects.followers_collection(ML_ACTOR, total=7, urls=URLS) == {
        "@context": context, "type": "OrderedCollection", "totalItems": 7,
        "id": "https://notes.example/ap/actors/machine-learning/followers"}
    assert objects.following_collection(ML_ACTOR, urls=URLS) == {
        "@context": context, "type": "OrderedCollection", "totalItems": 0, "orderedItems": [],
        "id": "https://notes.example/ap/actors/machine-learning/following"}


def test_webfinger_jrd() -> None:
    assert objects.webfinger(ML_ACTOR, urls=URLS) == {
        "subject": "acct:machine-learning@notes.example",
        "aliases": ["https://notes.example/updates/category/machine-learning/",
                    "https://notes.example/ap/actors/machine-learning"],
        "links": [
            {"rel": "self", "type": "application/activity+json",
             "href": "https://notes.example/ap/actors/machine-learning"},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": "https://notes.example/updates/category/machine-learning/"},
        ],
    }


def test_nodeinfo() -> None:
    assert objects.nodeinfo_links(URLS) == {"links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
        "href": "https://notes.example/nodeinfo/2.1"}]}
    assert objects.nodeinfo(version="1.2.3", actors=3, local_posts=45, site=SITE) == {
        "version": "2.1",
        "software": {"name": "feedsvc", "version": "1.2.3"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": 3}, "localPosts": 45},
        "metadata": {"nodeName": "INCOMING TRANSMISSION", "nodeDescription": "Notes, published"},
    }


def test_documents_are_json_and_deterministic() -> None:
    entry = make_entry()
    first = json.dumps(objects.create_activity(entry, author=ML_ACTOR, urls=URLS))
    assert json.dumps(objects.create_activity(entry, author=ML_ACTOR, urls=URLS)) == first
    assert objects.iso(dt.datetime(2026, 5, 1, 8, 0, 0, 500000,
                                   tzinfo=dt.timezone(dt.timedelta(hours=8)))) == \
        "2026-05-01T00:00:00Z"
