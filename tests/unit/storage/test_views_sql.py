"""The views' SQL is generated from the registry: a renamed table renames what the view reads."""

from __future__ import annotations

import pytest

from wechat_datacube.endpoints import ENDPOINTS
from wechat_datacube.storage.views import views


def daily_followers_sql(schema: str = "wechat") -> tuple[str, str]:
    (view,) = [v for v in views(schema) if v.name == "daily_followers"]
    return view.select.as_string(), view.comment


def test_daily_followers_reads_the_registry_tables() -> None:
    select, _ = daily_followers_sql("analytics_wx")
    assert '"analytics_wx"."user_summary"' in select and '"analytics_wx"."user_cumulate"' in select
    assert "FULL JOIN" in select


def test_renamed_tables_are_followed_by_the_view_and_its_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, table in (("getusersummary", "follows_by_source"), ("getusercumulate", "followers_total")):
        monkeypatch.setitem(ENDPOINTS, name, ENDPOINTS[name]._replace(table=table))
    select, comment = daily_followers_sql()
    assert '"wechat"."follows_by_source"' in select and '"wechat"."followers_total"' in select
    assert "user_summary" not in select and "user_cumulate" not in select
    assert "follows_by_source rows summed" in comment and "followers_total's total" in comment
