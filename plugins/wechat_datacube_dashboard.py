"""Airflow plugin: the WeChat datacube dashboard inside the Airflow UI.

Registers the dashboard's FastAPI app on the api-server under ``/wechat-dashboard`` and an
external view, so the UI's navigation shows "WeChat datacube" and embeds the page at
``/plugin/wechat-datacube``. The app authenticates every request itself (Airflow does not
guard plugin apps): see :mod:`wechat_datacube.dashboard.guard`.

The file name is unique on purpose: the plugin loader imports every top-level ``.py`` in
``plugins/`` under its stem, and a stem like ``dashboard`` or ``wechat_datacube`` would
shadow a real module. Everything else lives in the ``wechat_datacube.dashboard`` package.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from wechat_datacube.dashboard import URL_PREFIX, VIEW_ROUTE
from wechat_datacube.dashboard.app import create_app


class WeChatDatacubeDashboardPlugin(AirflowPlugin):
    """The dashboard app and its entry in the UI navigation."""

    name = "wechat_datacube_dashboard"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "WeChat datacube dashboard"}]
    external_views = [
        {
            "name": "WeChat datacube",
            "href": f"{URL_PREFIX}/",
            "url_route": VIEW_ROUTE,
            "destination": "nav",
            "category": "browse",
        }
    ]
