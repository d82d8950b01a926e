"""Which document a request runs: automatic persisted queries and trusted documents.

Automatic persisted queries (Apollo's APQ, also spoken by urql and Relay set-ups): a client
sends `extensions.persistedQuery.sha256Hash` alone; when the server does not know the hash
it answers `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND), the client retries
with the query and its hash, and from then on the hash alone runs the query, by POST or
GET. The documents live in one database table shared by every server process, evicted
least recently used past a limit; each process keeps a small read-through cache in front
of it. A hash names its document's content, so a cached document can never be stale.

Trusted documents (SONGBOOK_TRUSTED_DOCUMENTS): a manifest registered ahead of time. Only
its documents run, by id or by their exact text; nothing new can be registered.
"""

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graph.core.documents import PERSISTED_QUERY_NOT_FOUND, DocumentRefused, Resolved
from persistence.database import Database
from persistence.errors import Conflict, DatabaseTimeout, DatabaseUnavailable, DomainError
from persistence.repositories import PersistedQueryRepository

logger = logging.getLogger("songbook.graph")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Refresh a document's last use in the shared store at most this often per process, so
# the least-recently-used order stays roughly right without a write per request.
TOUCH_INTERVAL_SECONDS = 600.0
# Longer documents still run; they are just not worth a row in the shared store.
MAX_STORED_DOCUMENT_BYTES = 64 * 1024


def persisted_query_not_found() -> DocumentRefused:
    return DocumentRefused("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, Mapping):
        raise DocumentRefused("extensions.persistedQuery must be an object", "BAD_REQUEST")
    if persisted.get("version", 1) != 1:
        raise DocumentRefused("Unsupported persisted query version", "BAD_REQUEST")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not sha:
        raise DocumentRefused(
            "extensions.persistedQuery.sha256Hash must be a string", "BAD_REQUEST"
        )
    return sha


class TrustedDocuments:
    """A manifest of id -> document; the only operations that run when it is configured.

    Reads the shapes client build tools emit: a flat JSON object of id -> document (Relay,
    GraphQL Code Generator's persisted documents) or Apollo's persisted query manifest
    (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}`).
    Ids need not be SHA-256 (Relay's are MD5), so full query text is matched by its own
    hash against every registered document.
    """

    def __init__(self, documents: Mapping[str, str]) -> None:
        self.by_id = dict(documents)
        self.by_text_hash = {sha256_hex(document): document for document in documents.values()}

    @classmethod
    def load(cls, path: Path) -> "TrustedDocuments":
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"SONGBOOK_TRUSTED_DOCUMENTS: cannot read {path}: {error}") from None
        documents: dict[str, str] = {}
        if isinstance(manifest, dict) and isinstance(manifest.get("operations"), list):
            for operation in manifest["operations"]:
                if isinstance(operation, dict):
                    documents[str(operation.get("id"))] = str(operation.get("body"))
        elif isinstance(manifest, dict):
            documents = {str(key): str(value) for key, value in manifest.items()}
        if not documents or not all(isinstance(v, str) and v for v in documents.values()):
            raise ValueError(
                f"SONGBOOK_TRUSTED_DOCUMENTS: {path} holds no documents "
                "(expected an object of hash -> document, or an Apollo manifest)"
            )
        return cls(documents)

    def resolve(self, query: str | None, sha: str | None) -> str:
        if sha is not None:
            document = self.by_id.get(sha)
            if document is None:
                raise DocumentRefused(
                    f"Persisted document {sha} is not in this server's trusted documents",
                    "PERSISTED_QUERY_NOT_IN_LIST",
                )
            if query is not None and query != document:
                raise DocumentRefused(
                    "The query does not match the trusted document of that hash",
                    "PERSISTED_QUERY_HASH_MISMATCH",
                )
            return document
        if query is None:
            raise DocumentRefused("No GraphQL query found in the request", "BAD_REQUEST")
        if sha256_hex(query) not in self.by_text_hash:
            raise DocumentRefused(
                "This server only runs trusted documents, and the query is not one of them; "
                "register it in the trusted documents manifest or send its hash",
                "OPERATION_NOT_TRUSTED",
            )
        return query


class PersistedQueries:
    """The APQ store: a bounded table shared by all processes, behind an LRU cache."""

    def __init__(self, db: Database, max_documents: int, cache_size: int) -> None:
        self.db = db
        self.max_documents = max_documents
        self.cache_size = cache_size
        # sha256 -> (document, when this process last refreshed the row's last use)
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def lookup(self, sha: str) -> str | None:
        cached = self._cache.get(sha)
        if cached is not None:
            self._cache.move_to_end(sha)
            document, touched = cached
            if time.monotonic() - touched > TOUCH_INTERVAL_SECONDS:
                await self.remember(sha, document)
            return document
        try:
            async with self.db.read() as session:
                stored = await PersistedQueryRepository(session).document(sha)
        except DatabaseUnavailable as error:
            raise DocumentRefused(error.message, "DATABASE_UNAVAILABLE", error) from None
        except DatabaseTimeout as error:
            raise DocumentRefused(error.message, "TIMEOUT", error) from None
        if stored is not None:
            # The first use in this process counts as a use in the shared store too.
            await self.remember(sha, stored)
        return stored

    async def remember(self, sha: str, document: str) -> None:
        """Store (or refresh) a verified document; never fails the request it serves."""
        self._cache_put(sha, document)
        if self.max_documents <= 0 or len(document.encode("utf-8")) > MAX_STORED_DOCUMENT_BYTES:
            return
        try:
            async with self.db.transaction() as session:
                repository = PersistedQueryRepository(session)
                if not await repository.touch(sha):
                    await repository.add(sha, document)
                    await repository.evict_beyond(self.max_documents)
        except Conflict:
            pass  # another process stored it first: just as good
        except DomainError as error:
            logger.warning("Could not store persisted query %s: %s", sha, error)

    def _cache_put(self, sha: str, document: str) -> None:
        if self.cache_size <= 0:
            return
        self._cache[sha] = (document, time.monotonic())
        self._cache.move_to_end(sha)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


class DocumentPolicy:
    """Decides the document of each request: as sent, from the APQ store, or trusted only
    (the DocumentSource of graph/core/documents.py)."""

    def __init__(self, store: PersistedQueries, trusted: TrustedDocuments | None = None) -> None:
        self.store = store
        self.trusted = trusted

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> Resolved:
        sha = _requested_hash(extensions)
        if self.trusted is not None:
            return Resolved(self.trusted.resolve(query, sha))
        if sha is None:
            return Resolved(query)
        if not _SHA256.match(sha):
            raise DocumentRefused(
                "extensions.persistedQuery.sha256Hash must be 64 lowercase hexadecimal digits",
                "BAD_REQUEST",
            )
        if query is None:
            document = await self.store.lookup(sha)
            if document is None:
                raise persisted_query_not_found()
            return Resolved(document)
        if sha256_hex(query) != sha:
            raise DocumentRefused(
                "provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH"
            )
        return Resolved(query, register_as=sha)

    async def register(self, resolved: Resolved) -> None:
        if resolved.register_as is not None and resolved.query is not None:
            await self.store.remember(resolved.register_as, resolved.query)
