"""PostgreSQL storage: what the task layer (window loader, operators, backfill planner and
report, token store) calls. Everything else imports the module that does the job:

* :mod:`.connection` — schema names, transactions, advisory locks;
* :mod:`.columns` — the columns every typed table has besides the registry's;
* :mod:`.schema`, :mod:`.views` — DDL and views generated from the endpoint registry;
* :mod:`.versions` — numbered steps in a ledger, the fingerprint, the one-query check;
* :mod:`.migrations`, :mod:`.token_tables` — the data schema's and the token schema's steps;
* :mod:`.reconcile`, :mod:`.catalog` — live tables made equal to the registry;
* :mod:`.rows`, :mod:`.values`, :mod:`.payloads` — API rows typed, bodies made storable;
* :mod:`.writer`, :mod:`.window_sql`, :mod:`.history` — one window written atomically,
  never shrinking stored history;
* :mod:`.load_log` — per-date states; :mod:`.checks` — data-quality checks;
* :mod:`.quota` — the shared memory of a spent daily quota.
"""

from __future__ import annotations

from wechat_datacube.storage.connection import read_transaction, validate_schema_name
from wechat_datacube.storage.load_log import load_status, loaded_dates
from wechat_datacube.storage.migrations import ensure_schema
from wechat_datacube.storage.payloads import body_json
from wechat_datacube.storage.quota import blocked_until, record_block
from wechat_datacube.storage.token_tables import ensure_token_schema
from wechat_datacube.storage.writer import WriteResult, record_failure, write_window

__all__ = [
    "WriteResult",
    "blocked_until",
    "body_json",
    "ensure_schema",
    "ensure_token_schema",
    "load_status",
    "loaded_dates",
    "read_transaction",
    "record_block",
    "record_failure",
    "validate_schema_name",
    "write_window",
]
