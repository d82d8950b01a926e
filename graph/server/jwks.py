"""The identity provider's public keys (a JWKS URL), fetched off the event loop and cached."""

import asyncio
import logging
import time

from jwt import PyJWK, PyJWKClient, PyJWTError

logger = logging.getLogger("songbook.auth")

# The algorithms a JWKS key may verify: asymmetric only, so no key can double as an HMAC
# secret (the RS256/HS256 confusion).
JWKS_ALGORITHMS = ("RS256", "ES256")


class SigningKeys:
    """The keys at a JWKS URL, by `kid`, fetched with PyJWT's PyJWKClient in a thread.

    Keys are fetched on first use and again once older than `max_age`. A token naming a
    `kid` not among them (the provider has rotated its keys) triggers a fetch at once, but
    at most one per `cooldown`, so a flood of made-up kids cannot turn this
    process into a flood of requests to the provider. A failed fetch keeps the keys already
    held and is not retried for `cooldown` either.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = 300.0,
        cooldown: float = 10.0,
        fetch_timeout: float = 5.0,
    ) -> None:
        # PyJWKClient's own cache is off: it would decide when to fetch while holding a
        # thread lock, inside the worker thread; here every fetch is one task's, in order.
        self._client = PyJWKClient(url, cache_jwk_set=False, timeout=fetch_timeout)
        self.url = url
        self.max_age = max_age
        self.cooldown = cooldown
        self._keys: list[PyJWK] = []
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._unknown_kid_fetched_at: float | None = None
        # Fetches finished (or failed): a task that waited for another's fetch sees it.
        self._fetches = 0
        self._fetching = asyncio.Lock()

    async def key(self, kid: str | None) -> PyJWK | None:
        """The key a token whose header names `kid` is signed with, or None. A token
        without a `kid` may use the provider's only key."""
        if self._fetching.locked():
            async with self._fetching:
                pass  # a fetch is under way: decide on the keys it brings
        now = time.monotonic()
        if self._stale(now) and self._may_retry(now):
            await self._fetch()
        elif self._find(kid) is None and self._may_fetch_for_unknown_kid(now):
            self._unknown_kid_fetched_at = now
            await self._fetch()
        return self._find(kid)

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at > self.max_age

    def _may_retry(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self.cooldown

    def _may_fetch_for_unknown_kid(self, now: float) -> bool:
        last = self._unknown_kid_fetched_at
        return last is None or now - last >= self.cooldown

    def _find(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.key_id == kid), None)

    async def _fetch(self) -> None:
        done_before = self._fetches
        async with self._fetching:
            if self._fetches != done_before:
                return  # another task fetched while this one waited: its keys will do
            self._tried_at = time.monotonic()
            try:
                # urllib blocks: never on the event loop.
                jwk_set = await asyncio.to_thread(self._client.get_jwk_set, True)
            except (PyJWTError, ValueError, OSError) as error:
                logger.warning("Could not fetch the JWT signing keys from %s: %s", self.url, error)
                return
            finally:
                self._fetches += 1
            self._keys = [
                key
                for key in jwk_set.keys
                if key.public_key_use in ("sig", None) and key.algorithm_name in JWKS_ALGORITHMS
            ]
            self._fetched_at = self._tried_at
            if not self._keys:
                logger.warning("%s holds no RS256 or ES256 signing key", self.url)
