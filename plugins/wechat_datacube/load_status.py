"""What happened to one (account, endpoint, ref_date): the load states, as one enum.

Stored in ``load_log.status`` and ``api_response.status`` (the schema's CHECK constraint is
generated from this enum), counted by the backfill planner and report, drawn by the
dashboard and printed by the local launcher. A ``StrEnum``: members compare equal to the
strings stored in the database and psycopg writes them as those strings.
"""

from __future__ import annotations

from enum import StrEnum


class LoadStatus(StrEnum):
    #: Rows were written for the day.
    LOADED = "loaded"
    #: WeChat published the day with no rows (after the readiness deadline): nothing to store.
    EMPTY = "empty"
    #: A shorter answer would have erased stored rows; the stored rows were kept.
    KEPT = "kept"
    #: The day is not published yet; a later try will fetch it.
    NOT_READY = "not_ready"
    #: The call failed for good (the error is in the log row's message).
    FAILED = "failed"

    @property
    def is_done(self) -> bool:
        """Whether the day needs no further fetching (a backfill skips it)."""
        return self in DONE


#: States after which a day is complete: a backfill does not fetch it again.
DONE: frozenset[LoadStatus] = frozenset({LoadStatus.LOADED, LoadStatus.EMPTY, LoadStatus.KEPT})
