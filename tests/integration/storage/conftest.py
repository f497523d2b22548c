"""The ``db`` fixture (a fresh, migrated database) for every storage integration test."""

from tests.fixtures.storage import db  # noqa: F401  (a fixture: pytest finds it by name)
