"""People: accounts, roles and API tokens — who may do what, and who did it.

- :mod:`~monitor.people.model`: roles, the :class:`~monitor.people.model.Principal` a request acts as,
  and the checks of a login, display name, mobile and password.
- :mod:`~monitor.people.roles`: :func:`~monitor.people.roles.can`, the role rules.
- :mod:`~monitor.people.passwords` (argon2id) and :mod:`~monitor.people.tokens` (SHA-256).
- :mod:`~monitor.people.store`: the SQL of the ``account`` and ``api_token`` tables.
- :mod:`~monitor.people.accounts`: managing accounts (the CLI, later the admin API).
- :mod:`~monitor.people.auth`: a bearer token or a login and password → a Principal.
- :mod:`~monitor.people.audit`: stamping the activity log with who did it.

Nothing is imported here, so :mod:`monitor.store` may import :mod:`~monitor.people.audit`
without a cycle.
"""
