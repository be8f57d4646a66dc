"""API tokens: ``pm_`` + 32 random bytes (URL-safe base64), kept only as a SHA-256 digest.

Why SHA-256 and not argon2, as for passwords: a password is guessable, so its hash must be
slow to try guesses against; a token is 256 random bits, so nobody can guess it however fast
the hash, and a slow hash would only cost ~50 ms of CPU on every API request (and hand an
attacker a way to burn it). A digest of a stolen database still gives no usable token.

The first characters after ``pm_`` are the token's id: stored in clear (unique), shown in
``user token --list`` and the activity log, used to find the row; the digest of the whole
token is then compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "pm_"
#: Characters of the random part that make the token's id (48 bits: collisions are retried).
ID_LENGTH = 8
RANDOM_BYTES = 32
#: Length of a token we issue: ``pm_`` + 43 characters of URL-safe base64.
LENGTH = len(PREFIX) + 43
#: Compared against when no token has the id presented, so both paths do the same work.
NO_DIGEST = "0" * 64


def new_token() -> str:
    """Return a new random token."""
    return PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def token_id(token: str) -> str | None:
    """Return the id of a token of ours, or None if ``token`` cannot be one."""
    if len(token) != LENGTH or not token.startswith(PREFIX):
        return None
    return token[len(PREFIX) : len(PREFIX) + ID_LENGTH]


def digest(token: str) -> str:
    """Return the SHA-256 of ``token`` in hex, as stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored: str | None) -> bool:
    """Compare the digest of ``token`` with ``stored`` in constant time (None: nothing to match)."""
    same = hmac.compare_digest(digest(token).encode(), (stored or NO_DIGEST).encode())
    return same and stored is not None
