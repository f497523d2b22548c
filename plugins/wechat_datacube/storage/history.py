"""Never let a worse answer overwrite a better one: which days of a window would shrink.

Stored history is the product. WeChat keeps a limited window and answers an empty list
for many reasons (an endpoint retired or gone dark, a glitch, a day re-asked long after,
``reprocess=all``), so "replace the window with whatever came back" would erase rows a user
already has — and the daily maturing re-fetch of a send date 6 (or 29) days back would do
it without anyone acting. This module decides, per day, whether the new answer is a
shrink of what is stored (pure functions; the writer reads the stored profile and acts):

* fewer rows for the day than are stored (none at all included);
* for an endpoint with a nested series (getarticletotal / getarticletotaldetail), an
  article with fewer stat dates than are stored, or missing altogether.

A shrinking day keeps its stored rows unless the run opts in (``replace_shrinking``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from wechat_datacube.endpoints import EndpointSpec

#: day -> rows per group (the article's msgid for nested series, "" otherwise).
Profile = dict[dt.date, Counter[str]]


def group_column(spec: EndpointSpec) -> str | None:
    """The column whose rows form one series per day (msgid for nested series), or None."""
    return "msgid" if spec.nested and "msgid" in spec.key else None


def profile(spec: EndpointSpec, rows: Iterable[Mapping[str, Any]]) -> Profile:
    """Count typed rows per day and group."""
    group = group_column(spec)
    out: Profile = {}
    for row in rows:
        out.setdefault(row[spec.date_column], Counter())[str(row[group]) if group else ""] += 1
    return out


def shrinking_days(spec: EndpointSpec, stored: Profile, new: Profile) -> dict[dt.date, str]:
    """Days whose new answer holds less than what is stored -> why, in words."""
    out: dict[dt.date, str] = {}
    for day, have in stored.items():
        got = new.get(day, Counter())
        have_rows, got_rows = sum(have.values()), sum(got.values())
        if got_rows < have_rows:
            out[day] = f"the answer has {got_rows} row(s) for {day} where {have_rows} are stored"
            continue
        if group_column(spec) is None:
            continue
        fewer = sorted(g for g, n in have.items() if got[g] < n)
        if fewer:
            first = fewer[0]
            out[day] = (
                f"{len(fewer)} article(s) of {day} would lose stat dates (e.g. {first}: "
                f"{got[first]} in the answer, {have[first]} stored)"
            )
    return out
