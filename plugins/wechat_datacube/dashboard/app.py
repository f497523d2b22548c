"""The dashboard's FastAPI app: the HTML page at ``/`` and JSON endpoints under ``/api``.

Mounted by the api-server at :data:`wechat_datacube.dashboard.URL_PREFIX`. Every route
depends on :func:`.guard.authenticate`; the OpenAPI schema and docs are switched off
because FastAPI would serve them outside that dependency. Handlers are plain ``def`` so
the blocking Postgres reads run in the worker thread pool, not on the event loop.

JSON endpoints (``begin``/``end`` are Beijing dates, default: the 30 days up to the
account's newest loaded day):

* ``GET /api/accounts`` — the accounts the user may read (and the accounts file's errors, in
  full only for a user who may read every DAG);
* ``GET /api/accounts/{account}/{section}`` with section ``daily``, ``sources``,
  ``share-scenes``, ``hourly``, ``articles`` (``top``), ``freshness``, from the
  replacement family ``read-scenes``, ``biz-summary`` and ``article-curves`` (``top``),
  from the user family ``followers`` (per day) and ``follow-sources`` (per follow source),
  and from the message family ``messages`` (per message type);
* ``GET /api/accounts/{account}/dashboard`` — every section at once (what the page shows).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from wechat_datacube.dashboard import report
from wechat_datacube.dashboard.guard import (
    AccessDeniedError,
    authenticate,
    may_read_account,
    require_account,
    visible_account_errors,
)
from wechat_datacube.dashboard.json_body import DashboardJSONResponse
from wechat_datacube.dashboard.page import render_page
from wechat_datacube.dashboard.source import DashboardError, configured_accounts, get_account

#: URL section name -> report section.
SECTION_PATHS = {
    "daily": "daily",
    "sources": "sources",
    "share-scenes": "share_scenes",
    "hourly": "hourly",
    "articles": "articles",
    "read-scenes": "read_scenes",
    "biz-summary": "biz_summary",
    "article-curves": "article_curves",
    "followers": "followers",
    "follow-sources": "follow_sources",
    "messages": "messages",
    "freshness": "freshness",
}

Begin = Annotated[dt.date | None, Query(description="first Beijing date (YYYY-MM-DD)")]
End = Annotated[dt.date | None, Query(description="last Beijing date (YYYY-MM-DD)")]
Top = Annotated[int, Query(ge=1, le=20, description="how many top articles")]
#: The authenticated Airflow user (a ``BaseUser``; typed Any so Airflow is not imported here).
User = Annotated[Any, Depends(authenticate)]


#: The routes; :func:`create_app` puts them behind :func:`.guard.authenticate`.
router = APIRouter()


def _login_redirect(request: Request) -> Response:
    from airflow.api_fastapi.app import get_auth_manager

    return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)


def _is_api(request: Request) -> bool:
    """JSON clients get 401; people opening the page are sent to the login form."""
    return "/api/" in request.url.path or request.url.path.endswith("/api")


async def _denied(request: Request, exc: AccessDeniedError) -> Response:
    """401 (to the login form for a page) or 403, as JSON with the reason."""
    if exc.status_code == 401 and not _is_api(request):
        return _login_redirect(request)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _failed(request: Request, exc: DashboardError) -> Response:
    """A request the dashboard cannot serve: its own status and a message safe to show."""
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)


def create_app() -> FastAPI:
    """A fresh app (the plugin registers one; tests may build their own): every route behind the guard."""
    app = FastAPI(
        title="WeChat datacube dashboard",
        dependencies=[Depends(authenticate)],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(AccessDeniedError, _denied)
    app.add_exception_handler(DashboardError, _failed)
    app.include_router(router)
    return app


@router.get("/", response_class=HTMLResponse)
def page(user: User, account: str | None = None, begin: Begin = None, end: End = None, top: Top = 5) -> Response:
    """The page of ``account`` (default: the first the user may read); a refusal is shown on it."""
    accounts, errors = configured_accounts()
    visible = [a for a in accounts if may_read_account(user, a.name)]
    selected = account or (visible[0].name if visible else None)
    data: dict[str, Any] | None = None
    error: str | None = None
    status = 200
    if selected is not None:
        try:
            require_account(user, selected)
            data = report.build(get_account(selected), list(report.SECTIONS), begin, end, top)
        except (DashboardError, AccessDeniedError) as exc:
            error, status = str(exc), exc.status_code
    html = render_page(
        accounts=visible, account_errors=visible_account_errors(user, errors), selected=selected, data=data,
        error=error, top=top,
    )
    return HTMLResponse(html, status_code=status)


@router.get("/api/accounts")
def accounts(user: User) -> dict[str, Any]:
    found, errors = configured_accounts()
    return {
        "accounts": [
            {
                "name": a.name,
                "description": a.description,
                "start_date": a.start_date,
                "endpoints": list(a.endpoints),
                "schema": a.schema,
            }
            for a in found
            if may_read_account(user, a.name)
        ],
        "errors": visible_account_errors(user, errors),
    }


@router.get("/api/accounts/{account}/dashboard")
def dashboard(user: User, account: str, begin: Begin = None, end: End = None, top: Top = 5) -> DashboardJSONResponse:
    require_account(user, account)
    data = report.build(get_account(account), list(report.SECTIONS), begin, end, top)
    return DashboardJSONResponse(data)


@router.get("/api/accounts/{account}/{section}")
def section(user: User, account: str, section: str, begin: Begin = None, end: End = None, top: Top = 5) -> DashboardJSONResponse:
    if section not in SECTION_PATHS:
        raise HTTPException(404, f"unknown section {section!r}; known: {', '.join(SECTION_PATHS)}")
    require_account(user, account)
    data = report.build(get_account(account), [SECTION_PATHS[section]], begin, end, top)
    return DashboardJSONResponse(data)
