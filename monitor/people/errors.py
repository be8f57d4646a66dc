"""What managing people can refuse; each error names the field and the value it is about.

::

    PeopleError (field, value: what a CLI or API error message names; value None for a password)
    ├── InvalidField      a login, display name, mobile, role or password that does not pass its check
    ├── LoginTaken        another account has this login (case-insensitively)
    ├── UnknownAccount    no account with this login
    ├── AccountDisabled   the account is disabled (no new token for it)
    └── UnknownToken      no token with this id on this account
"""

from __future__ import annotations


class PeopleError(Exception):
    """A request about people that is refused; ``str()`` is the message for a person."""

    def __init__(self, field: str, value: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if value is None else f"{field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class InvalidField(PeopleError):
    """A value that does not pass its check."""


class LoginTaken(PeopleError):
    """Another account has this login."""

    def __init__(self, login: str) -> None:
        super().__init__("login", login, "an account with this login exists")


class UnknownAccount(PeopleError):
    """No account with this login."""

    def __init__(self, login: str) -> None:
        super().__init__("login", login, "no such account")


class AccountDisabled(PeopleError):
    """The account is disabled."""

    def __init__(self, login: str) -> None:
        super().__init__("login", login, "the account is disabled")


class UnknownToken(PeopleError):
    """No token with this id on this account."""

    def __init__(self, token_id: str, login: str) -> None:
        super().__init__("token id", token_id, f"no such token of {login}")
