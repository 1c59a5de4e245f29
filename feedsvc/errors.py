"""The one exception tree. Each error carries its identity (source, path, key, slug) so
`str(e)` says what failed and where; foreign exceptions are wrapped once, at the boundary."""

from __future__ import annotations


class FeedsvcError(Exception):
    """Base of every error feedsvc raises on purpose."""

    message = "feedsvc error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        identity = self._identity()
        if identity:
            parts.append(identity)
        cause = self.__cause__
        if cause is not None:
            parts.append(f"{type(cause).__name__}: {cause}")
        return ": ".join(parts)

    def _identity(self) -> str:
        return ""


class ConfigError(FeedsvcError):
    message = "bad config"

    def __init__(self, key: str, message: str, *, file: str | None = None) -> None:
        self.key = key
        self.file = file
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.key}: {self.message}"


class SourceError(FeedsvcError):
    message = "source not applied"

    def __init__(self, source: str, message: str | None = None) -> None:
        self.source = source
        super().__init__(message)

    def _identity(self) -> str:
        return f"source={self.source}"


class SourceUnavailableError(SourceError):
    message = "source root missing or unreadable"


class NoteError(FeedsvcError):
    message = "note skipped"

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self) -> tuple[type[NoteError], tuple[str, str, str]]:
        return (type(self), (self.source, self.path, self.reason))  # crosses process pools

    def __str__(self) -> str:
        return f"{self.source}:{self.path}: {self.reason}"


class FrontMatterError(NoteError):
    pass


class NoteEncodingError(NoteError):
    pass


class NoteTooLargeError(NoteError):
    pass


class NoteReadError(NoteError):
    pass


class StoreError(FeedsvcError):
    message = "store error"


class StoreVersionError(StoreError):
    """The store's schema revision is one this code does not know (written by a newer
    feedsvc): nothing is touched, the process stops."""

    def __init__(self, revision: str, head: str) -> None:
        self.revision = revision
        self.head = head
        super().__init__(f"the store is at schema revision {revision!r}, which this feedsvc "
                         f"does not know (its newest is {head!r}): upgrade feedsvc, or point "
                         f"it at another store")


class NotFoundError(FeedsvcError, LookupError):
    message = "not found"


class CategoryNotFoundError(NotFoundError):
    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"no category {slug!r}")


class EntryNotFoundError(NotFoundError):
    def __init__(self, category: str, slug: str) -> None:
        self.category = category
        self.slug = slug
        super().__init__(f"no entry {category}/{slug}")


class MediaNotFoundError(NotFoundError):
    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        super().__init__("no such file")


class PageNotFoundError(NotFoundError):
    pass


class TagNotFoundError(NotFoundError):
    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"no tag {slug[:80]!r}")


class QueryParameterError(FeedsvcError):
    """A query parameter that cannot be read as one value (given twice with different values,
    absurdly long); a value that merely names nothing is a NotFoundError."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class WebhookError(FeedsvcError):
    message = "webhook refused"


class WebhookAuthError(WebhookError):
    message = "missing or wrong signature"


class WebhookDisabledError(WebhookError):
    message = "webhook disabled: no secret configured"


class PayloadTooLargeError(WebhookError):
    message = "payload over 1 MiB"


class RenderError(FeedsvcError):
    def __init__(self, format: str, slug: str, message: str = "feed could not be rendered") -> None:
        self.format = format
        self.slug = slug
        super().__init__(message)

    def _identity(self) -> str:
        return f"format={self.format} slug={self.slug}"


class FederationError(FeedsvcError):
    message = "ActivityPub error"


class SignatureError(FederationError):
    """An inbox request whose HTTP signature, Digest or Date does not hold (a 401)."""

    def __init__(self, reason: str, *, key_id: str | None = None) -> None:
        self.key_id = key_id
        super().__init__(reason)

    def _identity(self) -> str:
        return f"key_id={self.key_id}" if self.key_id else ""


class FetchError(FederationError):
    """A remote document or inbox that could not be reached, was refused (a private address
    while those are not allowed), was too large or too slow, or was not what was asked for."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(reason)

    def _identity(self) -> str:
        return f"url={self.url}"
