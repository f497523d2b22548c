"""How a request's sections are spread over connections (no database: the reads are stand-ins)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.dashboard import shop_account
from wechat_datacube.dashboard import report
from wechat_datacube.dashboard.source import SourceUnavailableError
from wechat_datacube.dates import DateRange

NAMES = [f"s{i}" for i in range(6)]


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Sections that record which cursor read them, and a read_cursor that hands out numbered cursors."""
    seen: dict[str, Any] = {"by": {}, "opened": 0}
    barrier = threading.Barrier(report.PAGE_CONNECTIONS, timeout=5)

    def read(name: str) -> Any:
        def section(cur: str, req: report.Request) -> str:
            if name == "s0":
                barrier.wait()  # both connections are reading at the same time
            seen["by"][name] = cur
            return f"{name} on {cur}"
        return section

    @contextlib.contextmanager
    def read_cursor(account: Any) -> Iterator[str]:
        seen["opened"] += 1
        if seen.get("fail"):
            raise SourceUnavailableError("cannot open Postgres connection 'x'")
        yield f"cursor{seen['opened']}"

    sections = {n: report.Section((), read(n)) for n in NAMES}
    sections["s1"] = report.Section((), lambda cur, req: (threading.Barrier.wait(barrier), f"s1 on {cur}")[1])
    monkeypatch.setattr(report, "SECTIONS", sections)
    monkeypatch.setattr(report, "read_cursor", read_cursor)
    return seen


def _req() -> report.Request:
    return report.Request(shop_account(), DateRange(dt.date(2026, 1, 1), dt.date(2026, 1, 31)))


def test_sections_are_read_over_two_connections_at_once(stand_ins: dict[str, Any]) -> None:
    out = report._read_sections("main", _req(), NAMES)
    assert sorted(out) == NAMES
    assert stand_ins["opened"] == report.PAGE_CONNECTIONS - 1  # the request's own cursor is one of them
    assert set(stand_ins["by"].values()) | {out["s1"].split(" on ")[1]} == {"main", "cursor1"}


def test_one_section_uses_the_request_connection_only(stand_ins: dict[str, Any]) -> None:
    assert report._read_sections("main", _req(), ["s2"]) == {"s2": "s2 on main"}
    assert stand_ins["opened"] == 0


def test_a_helper_connection_that_fails_fails_the_request(stand_ins: dict[str, Any]) -> None:
    stand_ins["fail"] = True
    report.SECTIONS["s0"] = report.Section((), lambda cur, req: "s0")  # no barrier: the helper never reads
    report.SECTIONS["s1"] = report.Section((), lambda cur, req: "s1")
    with pytest.raises(SourceUnavailableError, match="cannot open"):
        report._read_sections("main", _req(), NAMES)
