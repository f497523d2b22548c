"""DailyReportOperator: after the daily loads, send the day's figures and freshness to the account's targets.

Thin, like the other operators: the business day is the run's data interval start in
Beijing (as the load tasks resolve it), the account comes from the accounts file at run
time (so the report sees the file the loads saw, not the one the DAG was parsed with),
:mod:`.daily_report` reads and words the figures and :func:`.dispatch.deliver` sends them
(never raising: a report that cannot be sent is logged, the task still succeeds). Only
``BaseOperator`` is imported at module level: DAG files build this task at every parse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from wechat_datacube.accounts import AccountConfig
    from wechat_datacube.alerts.dispatch import AlertTargets


class DailyReportOperator(BaseOperator):
    """Read one account's figures of the run's business day and deliver them as a ``DAILY_REPORT`` alert.

    :param account: the account's name in the accounts file.
    :param postgres_conn_id: the account's data database.
    :param schema: the account's data schema.
    :param alert_targets: where the report goes: ``AlertTargets.as_json()`` (robots, other
        notifiers, the outbox connection); empty sends nothing (the figures are still logged).
    :param clock: returns "now" as an aware datetime (tests); None is the real clock. It decides
        which days freshness expects (up to yesterday in Beijing).

    Returns (XCom) a small summary: the day, readers, shares, the top msgids, the followers
    (an account of the ``user`` family) and the endpoints whose day is not stored. Never a
    secret: targets are connection ids.
    """

    ui_color = "#d9f2e3"

    def __init__(
        self,
        *,
        account: str,
        postgres_conn_id: str = "postgres_default",
        schema: str = "wechat",
        alert_targets: Mapping[str, Any] | AlertTargets | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account = account
        self.postgres_conn_id = postgres_conn_id
        self.schema = schema
        # Kept as plain JSON data (an AlertTargets is accepted and turned into it).
        as_json = getattr(alert_targets, "as_json", None)
        self.alert_targets = as_json() if callable(as_json) else dict(alert_targets or {})
        self.clock = clock

    def business_day(self, context: Context) -> dt.date:
        """The run's data interval start (else its logical date) in Beijing: the day the loads fetched."""
        from wechat_datacube.dates import business_date
        from wechat_datacube.errors import ConfigError

        day = business_date(context)
        if day is None:
            raise ConfigError(
                "this run has no logical date / data interval: the daily report needs the run's business day",
                account=self.account,
            )
        return day

    def account_config(self) -> AccountConfig:
        """The account's entry of the accounts file; a missing or broken entry is a ConfigError naming it."""
        from wechat_datacube.accounts import load_accounts
        from wechat_datacube.errors import ConfigError

        loaded = load_accounts()
        for account in loaded.accounts:
            if account.name == self.account:
                return account
        for error in loaded.errors:
            if error.account == self.account:
                raise error
        raise ConfigError(f"no account named {self.account!r} in the accounts file {loaded.path}", account=self.account)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from wechat_datacube.alerts.daily_report import daily_figures, report_event, summary
        from wechat_datacube.alerts.dispatch import AlertTargets, deliver
        from wechat_datacube.dates import beijing_today, utcnow

        day = self.business_day(context)
        account = self.account_config()
        today = beijing_today((self.clock or utcnow)())
        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        try:
            figures = daily_figures(conn, self.schema, account, day, today=today)
        finally:
            conn.close()
        event = report_event(figures)
        self.log.info("Daily report: %s", event.headline)
        for line in event.details:
            self.log.info("  %s", line)
        targets = AlertTargets.from_json(self.alert_targets)
        deliver([event], targets, context)
        result = summary(figures)
        result["sent_to"] = {"robots": len(targets.robots), "notifiers": len(targets.notifiers)}
        return result
