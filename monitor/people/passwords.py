"""Password hashes: argon2id through argon2-cffi, checked in the same time whether the login exists or not."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, 64 MiB, p=4): ~50 ms a hash.
DEFAULT_HASHER = PasswordHasher()
#: Random bytes of a generated password: 12 bytes are 16 URL-safe characters, 96 bits.
GENERATED_BYTES = 12


def generate() -> str:
    """Return a new random password, for an admin to hand over once (it is shown, never stored)."""
    return secrets.token_urlsafe(GENERATED_BYTES)


class Passwords:
    """Hash and verify passwords; hashes made with older parameters are upgraded on the next good login."""

    def __init__(self, hasher: PasswordHasher = DEFAULT_HASHER) -> None:
        self.hasher = hasher
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """Return the argon2id hash of ``password`` (salted: two hashes of one password differ)."""
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """Tell whether ``password`` matches the ``stored`` hash (a malformed hash never matches)."""
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Tell whether ``stored`` was made with other parameters than ours (then hash the password again)."""
        return self.hasher.check_needs_rehash(stored)

    def verify_nobody(self, password: str) -> None:
        """Spend the time of one verification on a login that does not exist, so timing does not tell."""
        if self._dummy is None:
            self._dummy = self.hasher.hash("not a password of anybody")
        self.verify(self._dummy, password)
