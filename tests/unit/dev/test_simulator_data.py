"""The simulator's pure parts: its own facts, synthetic data, date rules, fault bookkeeping, clock."""

from __future__ import annotations

import ast
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
import wechat_datacube_dev.simulator as simulator_package
from wechat_datacube_dev.simulator.clock import SimClock
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.data import articles_sent, is_quiet
from wechat_datacube_dev.simulator.datacube import answer, last_ready_day, parse_range
from wechat_datacube_dev.simulator.facts import FACTS, HISTORY_START, UNDOCUMENTED_FIELD
from wechat_datacube_dev.simulator.faults import TERMINAL_KINDS, FaultBook, FaultRule
from wechat_datacube_dev.simulator.rows import BUILDERS, rows_for_day
from wechat_datacube_dev.simulator.wire import ApiError

from wechat_datacube.endpoints import ENDPOINTS, EndpointSpec

BJ = dt.timezone(dt.timedelta(hours=8))
SEED, APPID = 11, "wx_unit"
DAY = dt.date(2025, 12, 1)
LATE = DAY + dt.timedelta(days=40)


def _day_with_articles() -> dt.date:
    day = DAY
    while not articles_sent(SEED, APPID, day):
        day -= dt.timedelta(days=1)
    return day


# --- independence from the registry -------------------------------------------------------

#: The simulator lives in the development package and may not read facts from the provider
#: (registry, storage, anything): it must be able to disagree with them.
PROVIDER = "wechat_datacube"


def _is_provider(module: str) -> bool:
    return module == PROVIDER or module.startswith(PROVIDER + ".")


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports: import statements (relative ones resolved) and import_module calls."""
    package = simulator_package.__name__
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            found.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def test_no_simulator_module_imports_the_provider() -> None:
    modules = sorted(Path(simulator_package.__file__).parent.glob("*.py"))
    assert len(modules) > 10
    offenders = {
        path.name: sorted(m for m in _imported_modules(path) if _is_provider(m))
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_check_sees_every_way_of_importing_the_registry(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import wechat_datacube.endpoints\nfrom wechat_datacube import endpoints\n"
        "from wechat_datacube.errors import classify\nimportlib.import_module('wechat_datacube.storage')\n"
        "import wechat_datacube_dev.simulator.facts\n"
    )
    found = {m for m in _imported_modules(probe) if _is_provider(m)}
    assert found == {"wechat_datacube.endpoints", "wechat_datacube", "wechat_datacube.errors",
                     "wechat_datacube.errors.classify",
                     "wechat_datacube.storage"}


def test_simulator_facts_are_the_reference_values() -> None:
    """Written out from the reference (sections 2, 3, 7), not read from any table."""
    assert {n: f.max_span for n, f in FACTS.items()} == {
        "getarticlesummary": 1, "getarticletotal": 1, "getuserread": 3, "getuserreadhour": 1, "getusershare": 7,
        "getusersharehour": 1, "getarticleread": 1, "getarticleshare": 1, "getbizsummary": 30,
        "getarticletotaldetail": 1,
        # docs/datacube-families-research.md: the current pages' spans
        "getusersummary": 7, "getusercumulate": 7, "getupstreammsg": 7, "getupstreammsghour": 1,
        "getupstreammsgweek": 1, "getupstreammsgmonth": 1, "getupstreammsgdist": 15, "getupstreammsgdistweek": 15,
        "getupstreammsgdistmonth": 15, "getinterfacesummary": 30, "getinterfacesummaryhour": 1,
    }
    replacement = {n for n, f in FACTS.items() if f.family == "replacement"}
    assert {f.first_date for n, f in FACTS.items() if n not in replacement} == {dt.date(2014, 12, 1)}
    assert {f.first_date for n, f in FACTS.items() if n in replacement} == {dt.date(2025, 11, 1)}
    assert {n for n, f in FACTS.items() if f.is_delay} == replacement
    assert {n: f.series_days for n, f in FACTS.items() if f.series_days} == {
        "getarticletotal": 7, "getarticletotaldetail": 30}
    assert set(BUILDERS) == set(FACTS)


def test_simulator_and_registry_agree_where_both_model_the_api() -> None:
    """Two independent models of one API: a difference means one of them misread the reference."""
    assert set(FACTS) == set(ENDPOINTS)
    for name, facts in FACTS.items():
        spec = ENDPOINTS[name]
        assert (facts.max_span, facts.first_date, facts.is_delay, facts.period, facts.key + facts.element_key) == (
            spec.max_span, spec.first_date, spec.has_is_delay, spec.period, spec.key), name
        assert facts.series_days == spec.maturity_days, name


def _flatten(spec: EndpointSpec, row: dict[str, Any]) -> set[str]:
    """Field names of a list item read the way the registry says it is shaped."""
    seen = set(row)
    for holder in [row.get(spec.detail)] if spec.detail else []:
        seen |= set(holder or {})
    for child in row.get(spec.nested, []) if spec.nested else []:
        seen |= set(child)
    return seen - {UNDOCUMENTED_FIELD}


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_rows_carry_every_registry_field_where_the_registry_expects_it(name: str) -> None:
    """The simulator's answer, read with the registry's shape, has exactly the registry's fields."""
    spec = ENDPOINTS[name]
    day = _day_with_articles() if FACTS[name].period == "day" else DAY  # DAY: a Monday and a 1st
    rows = rows_for_day(name, SEED, APPID, day, LATE)
    assert rows
    seen: set[str] = set()
    for row in rows:
        seen |= _flatten(spec, row)
    containers = {c for c in (spec.nested, spec.detail) if c}
    assert seen == set(spec.column_names) | containers


# --- synthetic data ------------------------------------------------------------------------


def test_articles_are_sent_on_about_60_percent_of_days_with_1_to_3_each() -> None:
    days = [HISTORY_START + dt.timedelta(days=k) for k in range(1000)]
    counts = [len(articles_sent(SEED, APPID, d)) for d in days]
    assert 0.52 < sum(c > 0 for c in counts) / len(counts) < 0.68
    assert set(counts) == {0, 1, 2, 3}


def test_msgids_are_msg_data_id_underscore_index_and_unique() -> None:
    msgids = [a.msgid for k in range(365) for a in articles_sent(SEED, APPID, DAY - dt.timedelta(days=k))]
    assert all(re.fullmatch(r"\d+_[123]", m) for m in msgids)
    assert len(msgids) == len(set(msgids))


def test_titles_include_chinese_text() -> None:
    titles = [a.title for k in range(30) for a in articles_sent(SEED, APPID, DAY - dt.timedelta(days=k))]
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in titles)


def test_article_total_details_stop_at_the_newest_published_day() -> None:
    day = _day_with_articles()
    rows = rows_for_day("getarticletotal", SEED, APPID, day, day + dt.timedelta(days=2))
    assert all([d["stat_date"] for d in r["details"]] == [str(day + dt.timedelta(days=k)) for k in range(3)]
               for r in rows)


def test_cumulative_values_never_decrease() -> None:
    day = _day_with_articles()
    for name, nested in (("getarticletotal", "details"), ("getarticletotaldetail", "detail_list")):
        for row in rows_for_day(name, SEED, APPID, day, LATE, quiet_day_rate=0.5):
            for field, first in row[nested][0].items():
                if isinstance(first, list):  # read_user_source, read_jump_position: checked elsewhere
                    continue
                values = [d[field] for d in row[nested]]
                assert values == sorted(values), (name, field)


def test_quiet_days_are_days_without_a_send_and_grow_with_the_rate() -> None:
    days = [DAY - dt.timedelta(days=k) for k in range(400)]
    quiet = {rate: {d for d in days if is_quiet(SEED, APPID, d, rate)} for rate in (0.0, 0.05, 0.5, 1.0)}
    assert quiet[0.0] == set()
    assert quiet[1.0] == {d for d in days if not articles_sent(SEED, APPID, d)}
    assert quiet[0.05] <= quiet[0.5] <= quiet[1.0]
    assert 0 < len(quiet[0.05]) < len(quiet[0.5])


def test_a_quiet_day_empties_the_replacement_family_but_not_the_legacy_endpoints() -> None:
    day = next(d for d in (DAY - dt.timedelta(days=k) for k in range(60)) if is_quiet(SEED, APPID, d, 1.0))
    for name, facts in FACTS.items():
        quiet = rows_for_day(name, SEED, APPID, day, LATE, quiet_day_rate=1.0)
        assert quiet == ([] if facts.family == "replacement" else rows_for_day(name, SEED, APPID, day, LATE)), name
    for name in ("getarticleread", "getarticleshare", "getbizsummary", "getuserread"):
        assert rows_for_day(name, SEED, APPID, day, LATE, quiet_day_rate=0.0), name


def test_article_total_detail_does_not_grow_on_a_quiet_day() -> None:
    day = _day_with_articles()
    stat_days = [day + dt.timedelta(days=k) for k in range(30)]
    k = next(i for i, d in enumerate(stat_days) if i and is_quiet(SEED, APPID, d, 1.0))
    for row in rows_for_day("getarticletotaldetail", SEED, APPID, day, LATE, quiet_day_rate=1.0):
        before, on_the_day = row["detail_list"][k - 1], row["detail_list"][k]
        assert on_the_day["read_user"] == before["read_user"] and on_the_day["share_user"] == before["share_user"]


def test_data_is_deterministic_per_seed_and_appid() -> None:
    name = "getuserreadhour"
    assert rows_for_day(name, SEED, APPID, DAY, LATE) == rows_for_day(name, SEED, APPID, DAY, LATE)
    assert rows_for_day(name, SEED, APPID, DAY, LATE) != rows_for_day(name, SEED + 1, APPID, DAY, LATE)
    assert rows_for_day(name, SEED, APPID, DAY, LATE) != rows_for_day(name, SEED, "wx_other", DAY, LATE)


def test_a_year_of_every_endpoint_generates_in_a_few_ms_per_call() -> None:
    start = time.perf_counter()
    for k in range(365):
        day = dt.date(2023, 1, 1) + dt.timedelta(days=k)
        for name in FACTS:
            rows_for_day(name, 99, "wx_speed", day, day + dt.timedelta(days=40), quiet_day_rate=0.05)
    assert time.perf_counter() - start < 10  # ~3650 calls; a few ms each at most


def test_last_ready_day_switches_at_the_ready_hour_in_beijing() -> None:
    assert last_ready_day(dt.datetime(2024, 6, 20, 7, 59, tzinfo=BJ), 8) == dt.date(2024, 6, 18)
    assert last_ready_day(dt.datetime(2024, 6, 20, 8, 0, tzinfo=BJ), 8) == dt.date(2024, 6, 19)
    assert last_ready_day(dt.datetime(2024, 6, 20, 0, 30, tzinfo=dt.UTC), 8) == dt.date(2024, 6, 19)


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"begin_date": "2024-6-1", "end_date": "2024-06-01"}, 61500),
        ({"begin_date": "2024-02-30", "end_date": "2024-02-30"}, 61500),
        ({"end_date": "2024-06-01"}, 61500),
        ({"begin_date": "2024-06-02", "end_date": "2024-06-01"}, 61501),
        ({"begin_date": "2024-06-01", "end_date": "2024-06-04"}, 61501),
        ({"begin_date": "2024-06-20", "end_date": "2024-06-20"}, 61501),
    ],
)
def test_parse_range_refuses_like_wechat(body: dict[str, str], errcode: int) -> None:
    with pytest.raises(ApiError) as info:
        parse_range(FACTS["getuserread"], body, dt.datetime(2024, 6, 20, 10, tzinfo=BJ))
    assert info.value.errcode == errcode


def test_answer_skips_unpublished_days_and_flags_is_delay() -> None:
    now = dt.datetime(2025, 12, 20, 7, tzinfo=BJ)
    facts, config = FACTS["getbizsummary"], SimulatorConfig(seed=SEED)
    assert answer(facts, config, APPID, dt.date(2025, 12, 19), dt.date(2025, 12, 19), now) == {
        "list": [], "is_delay": True}
    assert answer(facts, config, APPID, dt.date(2025, 12, 18), dt.date(2025, 12, 18), now)["is_delay"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_spans": {"getnothing": 1}}, "unknown datacube endpoint"),
        ({"retired_endpoints": ["getuserreed"]}, "unknown datacube endpoint"),
        ({"max_spans": {"getbizsummary": 0}}, "max_spans"),
        ({"quiet_day_rate": 1.5}, "quiet_day_rate"),
    ],
)
def test_config_refuses_unknown_endpoints_and_nonsense(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**overrides)


def test_fault_rule_with_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule.from_dict({"kind": "gremlins"})


def test_queued_terminal_faults_play_out_one_request_at_a_time() -> None:
    book = FaultBook(seed=1)
    book.set([{"kind": "errcode", "errcode": -1, "count": 1}, {"kind": "drop", "count": 1}])
    kinds = [[r.kind for r in book.draw("/datacube/x", None, TERMINAL_KINDS)] for _ in range(3)]
    assert kinds == [["errcode"], ["drop"], []]


def test_clock_set_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError):
        SimClock().set(dt.datetime(2024, 6, 20, 10))


def test_unfrozen_clock_runs_on_from_where_it_stood() -> None:
    clock = SimClock()
    clock.set(dt.datetime(2024, 6, 20, 10, tzinfo=BJ))
    clock.advance(60)
    clock.unfreeze()
    moved = clock.now() - dt.datetime(2024, 6, 20, 10, 1, tzinfo=BJ)
    assert dt.timedelta(0) <= moved < dt.timedelta(seconds=5)
    assert not clock.frozen
