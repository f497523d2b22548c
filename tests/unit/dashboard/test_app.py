"""The dashboard app: every route it serves sits behind the guard, and no schema or docs route exists."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from wechat_datacube.dashboard.app import create_app, router
from wechat_datacube.dashboard.guard import authenticate


def unguarded(app: FastAPI) -> list[str]:
    """Paths of the app's routes that do not depend on the guard themselves (whatever their handlers take)."""
    return [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute) and not any(d.dependency is authenticate for d in route.dependencies)
    ]


def test_every_route_of_the_app_depends_on_the_guard() -> None:
    app = create_app()
    paths = {route.path for route in app.routes if isinstance(route, APIRoute)}
    assert paths == {"/", "/api/accounts", "/api/accounts/{account}/dashboard", "/api/accounts/{account}/{section}"}
    assert unguarded(app) == []


def test_the_routes_mounted_without_create_app_would_be_found_unguarded() -> None:
    bare = FastAPI()
    bare.include_router(router)
    assert sorted(unguarded(bare)) == sorted(r.path for r in router.routes if isinstance(r, APIRoute))


def test_no_openapi_schema_or_docs_route_is_served() -> None:
    app = create_app()
    assert (app.openapi_url, app.docs_url, app.redoc_url) == (None, None, None)
    assert not {"/openapi.json", "/docs", "/redoc"} & {getattr(r, "path", None) for r in app.routes}
