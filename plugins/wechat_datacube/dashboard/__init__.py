"""The in-Airflow dashboard: charts of the stored article metrics.

Served by the api-server as a plugin FastAPI app (``plugins/wechat_datacube_dashboard.py``
registers it) and shown in the Airflow UI as an external view. Jobs are split so each
module has one:

* :mod:`.guard` — only a logged-in Airflow user who may read the account's DAG gets in
  (Airflow does not authenticate plugin apps by itself);
* :mod:`.source` — which account, which Postgres connection, one read-only transaction;
* :mod:`.queries` — parameterised reads of the typed tables;
* :mod:`.freshness` — per-endpoint state from ``load_log`` (last day, empty, not ready, gaps);
* :mod:`.svg` and :mod:`.page` — server-side SVG charts and the HTML page (no JavaScript,
  no CDN: works with no internet);
* :mod:`.app` — the FastAPI app: the page and its JSON endpoints.
"""

from __future__ import annotations

#: Where the api-server mounts the app (not one of Airflow's reserved prefixes).
URL_PREFIX = "/wechat-dashboard"
#: The Airflow UI route of the embedded view: ``/plugin/<VIEW_ROUTE>``.
VIEW_ROUTE = "wechat-datacube"
