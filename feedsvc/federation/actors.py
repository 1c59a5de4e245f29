"""Which ActivityPub actors exist (DESIGN.md "Federation"): the site actor plus one `Service`
per category that has a handle, decided by the pure `plan_actors`; and their key pairs, made
once per actor and kept in the store. No Flask, no JSON; a private key is never logged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from feedsvc.config import HANDLE
from feedsvc.config import Config
from feedsvc.config import category_handle
from feedsvc.model import Category
from feedsvc.model import Clock
from feedsvc.urls import Urls

logger = logging.getLogger(__name__)

NO_HANDLE = "its slug is not ASCII ([a-z0-9_][a-z0-9_.-]*) and it has no handle"
SITE_HANDLE = "its handle is the site actor's (activitypub.site_handle)"
TAKEN = "its handle is another category's"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """One of our actors: the site actor (category None) or a category's."""

    handle: str
    name: str
    category: Category | None = None

    @property
    def is_site(self) -> bool:
        return self.category is None

    def page(self, urls: Urls) -> str:
        """The HTML page the actor stands for: its category's updates, or the home page."""
        return urls.digest(category=self.category.slug) if self.category else urls.home()


@dataclass(frozen=True, slots=True, kw_only=True)
class Unfollowable:
    """A category without an actor, and why (said once in the log)."""

    category: Category
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorSet:
    """Every actor at one moment: the site actor first, then the categories' by slug."""

    site: Actor
    categories: tuple[Actor, ...] = ()
    unfollowable: tuple[Unfollowable, ...] = ()

    @property
    def all(self) -> tuple[Actor, ...]:
        return (self.site, *self.categories)

    def get(self, handle: str) -> Actor | None:
        return next((a for a in self.all if a.handle == handle), None)

    def of_category(self, slug: str) -> Actor | None:
        return next((a for a in self.categories if a.category and a.category.slug == slug), None)

    def author_of(self, category: Category) -> Actor:
        """The actor an entry is attributed to: its category's, else the site actor."""
        return self.of_category(category.slug) or self.site


def plan_actors(config: Config, categories: Iterable[Category]) -> ActorSet:
    """The actors for these categories. Handles follow `config.category_handle`; of two
    categories with the same handle, the one with the smaller slug keeps it."""
    site = Actor(handle=config.activitypub.site_handle, name=config.site.title)
    actors: dict[str, Actor] = {}
    unfollowable: list[Unfollowable] = []
    for category in sorted(categories, key=lambda c: c.slug):
        handle = category_handle(category.slug, category.name, config)
        if handle is None:
            unfollowable.append(Unfollowable(category=category,
                                             reason=_why_no_handle(category, config)))
        elif handle in actors:
            unfollowable.append(Unfollowable(category=category, reason=TAKEN))
        else:
            actors[handle] = Actor(handle=handle, name=category.name, category=category)
    return ActorSet(site=site, categories=tuple(actors.values()),
                    unfollowable=tuple(unfollowable))


def _why_no_handle(category: Category, config: Config) -> str:
    configured = config.categories.get(category.name)
    if (configured is not None and configured.handle) or HANDLE.fullmatch(category.slug):
        return SITE_HANDLE
    return NO_HANDLE


class KeyStore(Protocol):
    """The store's keeping of our actors' key pairs (store.federation)."""

    def key(self, handle: str) -> tuple[str, str] | None: ...

    def save_key(self, handle: str, private_pem: str, public_pem: str,
                 now: datetime) -> tuple[str, str]: ...


class CategorySource(Protocol):
    """Where the visible categories come from (the Store)."""

    def categories(self, now: datetime) -> list[tuple[Category, int]]: ...

    def revision(self) -> int: ...


class ActorDirectory:
    """The actors of the store's visible categories, and each actor's key pair: generated on
    first use, saved insert-if-absent (two processes racing both get the stored pair), then
    kept in memory since a pair never changes."""

    def __init__(self, config: Config, store: CategorySource, clock: Clock, *, keys: KeyStore,
                 generate_key_pair: Callable[[], tuple[str, str]]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.keys = keys
        self.generate_key_pair = generate_key_pair
        self._pairs: dict[str, tuple[str, str]] = {}
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._kept: tuple[int, ActorSet] | None = None  # (store revision, its actors)

    def actors(self, categories: Iterable[Category] | None = None) -> ActorSet:
        """The actors now (of `categories` when the caller has read them already). Read
        from the store once per store revision: every inbox request asks, and counting the
        visible categories' entries costs a query over every entry."""
        if categories is not None:
            planned = plan_actors(self.config, categories)
        else:
            revision = self.store.revision()
            kept = self._kept
            if kept is not None and kept[0] == revision:
                return kept[1]
            planned = plan_actors(self.config, [c for c, _ in self.store.categories(self.clock())])
            self._kept = (revision, planned)
        self._log_unfollowable(planned.unfollowable)
        return planned

    def public_key_pem(self, handle: str) -> str:
        return self.key_pair(handle)[1]

    def key_pair(self, handle: str) -> tuple[str, str]:
        """(private PEM, public PEM) of one of our actors; for signing, never for showing."""
        pair = self._pairs.get(handle)
        if pair is not None:
            return pair
        with self._lock:
            pair = self._pairs.get(handle) or self.keys.key(handle)
            if pair is None:
                private_pem, public_pem = self.generate_key_pair()
                pair = self.keys.save_key(handle, private_pem, public_pem, self.clock())
                logger.info("actor key pair created: actor=%s", handle)
            self._pairs[handle] = pair
            return pair

    def _log_unfollowable(self, unfollowable: Iterable[Unfollowable]) -> None:
        for item in unfollowable:
            seen = (item.category.name, item.reason)
            if seen in self._logged:
                continue
            with self._lock:
                if seen in self._logged:
                    continue
                self._logged.add(seen)
            logger.warning('category has no ActivityPub actor: category=%s slug=%s reason=%s '
                           'key=categories."%s".handle', item.category.name, item.category.slug,
                           item.reason, item.category.name)
