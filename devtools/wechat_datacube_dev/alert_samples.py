"""The README's sample alert messages, rendered by the code that renders the real ones.

One sample per kind of event, built by the same builders the pipeline calls (from a real
error class, a real quota error...) and rendered by :mod:`wechat_datacube.alerts.render`,
so the README shows exactly what a WeCom group receives; ``make docs`` regenerates them
and ``docgen --check`` (a test) fails when the renderer changed and they were not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

from wechat_datacube.alerts.builders import (
    event_from_context,
    kept_event,
    not_published_event,
    quota_event,
    run_late_event,
)
from wechat_datacube.alerts.daily_report import (
    Change,
    DailyFigures,
    EndpointState,
    Figure,
    Followers,
    TopArticle,
    report_event,
)
from wechat_datacube.alerts.events import AlertEvent
from wechat_datacube.alerts.render import render_digest, render_event
from wechat_datacube.errors import QuotaExceededError, SchemaDriftError, error_for_errcode

ACCOUNT = "shop"
DAY = dt.date(2026, 6, 19)
#: Every sample happened at the same moment, so the generated text never changes by itself.
AT = "2026-06-20T02:05:00+00:00"
BASE_URL = "https://airflow.example.com"
DAG_ID = f"wechat_datacube_daily__{ACCOUNT}"
RUN_ID = "scheduled__2026-06-19T02:00:00+00:00"


def _failure_context(error: BaseException, endpoint: str) -> dict[str, object]:
    ti = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID, try_number=1, task_id=endpoint,
                         log_url=f"{BASE_URL}/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{endpoint}?try_number=1")
    task = SimpleNamespace(account=ACCOUNT, endpoint=endpoint, date_from="", date_to="")
    return {"ti": ti, "task": task, "exception": error,
            "data_interval_start": dt.datetime(2026, 6, 19, 2, tzinfo=dt.UTC)}


def _figures() -> DailyFigures:
    readers = Figure("readers", 12480, "getuserread", Change(11870.0, 610.0, 5.1, 7), 7)
    shares = Figure("shares", 356, "getusershare", Change(402.0, -46.0, -11.4, 7), 7)
    top = (
        TopArticle("2247483701_1", "夏季新品：三款防晒实测", 4310),
        TopArticle("2247483698_1", "618 购物清单（内含优惠券）", 2875),
        TopArticle("2247483701_2", "门店地址与营业时间更新", 960),
    )
    # The account pulls the user family too: the message has its followers line.
    followers = Followers(Figure("net followers", 105, "getusersummary", Change(92.0, 13.0, 13 / 92 * 100, 7), 7),
                          new=143, cancel=38, total=48216)
    states = [EndpointState(name, "loaded", DAY) for name in
              ("getarticlesummary", "getarticletotal", "getuserread", "getuserreadhour", "getusershare")]
    states.append(EndpointState("getusersharehour", "not_ready", DAY - dt.timedelta(days=1)))
    states += [EndpointState(name, "loaded", DAY) for name in ("getusersummary", "getusercumulate")]
    return DailyFigures(ACCOUNT, DAY, readers, shares, top, "getarticlesummary", tuple(states), followers)


def sample_events() -> dict[str, AlertEvent]:
    """Title -> one event of each kind, as the pipeline would build it."""
    day = DAY.isoformat()
    where = {"account": ACCOUNT, "begin_date": day, "end_date": day}
    secret = error_for_errcode(40125, "invalid appsecret rid: 6650a1f2-0c8b1e3a", endpoint="getusershare", **where)
    drift = SchemaDriftError(
        "response shape changed", missing=["share_count", "share_user"], unknown=["share_cnt", "share_uv"],
        endpoint="getusershare", **where,
    )
    quota = QuotaExceededError("WeChat API error: daily quota reached", errcode=45009, endpoint="getuserread",
                               reset_at=dt.datetime(2026, 6, 20, 16, tzinfo=dt.UTC), account=ACCOUNT,
                               begin_date="2025-03-01", end_date="2025-03-03")
    samples = {
        "A task failed for good (wrong AppSecret)": event_from_context(_failure_context(secret, "getusershare")),
        "Schema drift": event_from_context(_failure_context(drift, "getusershare")),
        "Daily quota (45009) stopped a backfill": quota_event(quota, backfill=True, stored=41, planned=120),
        "A stored day kept (never-shrink)": kept_event(
            account=ACCOUNT, endpoint="getuserread", days=[DAY], reasons=["answer has 2 rows, 5 are stored"]),
        "Data not published at the readiness deadline": not_published_event(
            account=ACCOUNT, endpoint="getuserread", days=[DAY],
            deadline=dt.datetime(2026, 6, 20, 4, tzinfo=dt.UTC), is_delay=False),
        "Daily run not finished by the deadline hour": run_late_event(
            account=ACCOUNT, dag_run={"dag_id": DAG_ID, "dag_run_id": RUN_ID, "state": "running"},
            deadline=dt.datetime(2026, 6, 20, 4, tzinfo=dt.UTC), business_date=day,
            link=f"{BASE_URL}/dags/{DAG_ID}/runs/{RUN_ID}"),
        "Daily data report": report_event(_figures()),
    }
    return {title: dataclasses.replace(event, occurred_at=AT) for title, event in samples.items()}


def alert_samples() -> str:
    """README: each message as the robot shows its markdown source, then a coalesced digest."""
    events = sample_events()
    out: list[str] = []
    for title, event in events.items():
        out += [f"**{title}**", "", "```markdown", render_event(event), "```", ""]
    burst = [
        event_from_context(_failure_context(
            error_for_errcode(40125, "invalid appsecret", endpoint=name, account=ACCOUNT, begin_date=DAY.isoformat(),
                              end_date=DAY.isoformat()), name))
        for name in ("getusershare", "getuserread", "getarticlesummary")
    ]
    out += ["**Several events coalesced into one message (the robot's 20-a-minute limit)**", "",
            "```markdown", render_digest(burst), "```"]
    return "\n".join(out)
