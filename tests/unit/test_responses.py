"""What a response body means: the list, and the one rule for stray rows (hook and storage alike)."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import MalformedResponseError
from wechat_datacube.responses import in_window, row_date

SHARE = get_endpoint("getusershare")
D = dt.date(2025, 3, 10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2025-03-10", D), (" 2025-03-10 ", D), (D, D), ("10/03/2025", None), (None, None), ("2025-02-30", None)],
)
def test_row_date_reads_the_date_column_as_the_typing_does(value: object, expected: dt.date | None) -> None:
    assert row_date(SHARE, {"ref_date": value}) == expected


def test_row_date_of_a_non_object_is_none() -> None:
    assert row_date(SHARE, ["2025-03-10"]) is None


def test_in_window_drops_strays_and_keeps_undated_rows_for_the_typing_to_refuse() -> None:
    rows = [{"ref_date": "2025-03-10"}, {"ref_date": "2019-01-01"}, {"ref_date": "junk"}]
    kept, stray = in_window(SHARE, rows, D, D)
    assert kept == [rows[0], rows[2]]
    assert stray == [dt.date(2019, 1, 1)]


def test_an_answer_whose_rows_all_lie_outside_the_window_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match=r"all 2 row\(s\) are dated outside") as err:
        in_window(SHARE, [{"ref_date": "2019-01-01"}, {"ref_date": " 2019-01-02 "}], D, D, account="a", endpoint="e")
    assert "account=a" in str(err.value)


def test_an_empty_answer_is_not_malformed() -> None:
    assert in_window(SHARE, [], D, D) == ([], [])
