"""Fault injection: rules that make the simulated API misbehave on purpose.

A rule is a dict: ``kind`` plus optional filters ``path`` (prefix) and ``appid``, and
when it fires: ``rate`` (probability, seeded RNG), ``count`` (the next N matching
requests), ``after`` (skip the first N matching requests). Without rate/count it fires
on every match. Kinds and their extra keys:

* transport/body kinds, decided before the request is handled: ``errcode`` (+errcode),
  ``http_status`` (+status), ``drop``, ``malformed_json``, ``html``; and ``slow``
  (+delay seconds), which only delays and can combine with the others;
* data kinds, applied to a successful datacube answer: ``empty``, ``stray_rows``,
  ``extra_fields``, ``fewer_rows`` (+keep: rows left, default 1; upstream lost rows) and
  ``bad_rows`` (+variant: ``no_list`` = an errcode-0 body without ``list``,
  ``missing_key`` = the first row loses a key field, ``wrong_type`` = a metric of the
  first row becomes text, ``drift`` = every non-key field of every row is renamed,
  ``nan`` / ``nul`` = an undocumented top-level key beside ``list`` holds NaN / a string
  with U+0000: JSON parsers accept both, PostgreSQL jsonb neither).

Matching and consuming happens under one lock, so ``count`` is exact under concurrency.
Of several terminal rules only the first that fires is used; later ones are not
consumed, so queued faults play out one request at a time.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

TERMINAL_KINDS = frozenset({"errcode", "http_status", "drop", "malformed_json", "html"})
DATA_KINDS = frozenset({"empty", "stray_rows", "extra_fields", "fewer_rows", "bad_rows"})
BAD_ROWS_VARIANTS = ("no_list", "missing_key", "wrong_type", "drift", "nan", "nul")
KINDS = TERMINAL_KINDS | DATA_KINDS | {"slow"}


@dataclass
class FaultRule:
    """One validated rule and its bookkeeping (matches seen, times fired)."""

    kind: str
    path: str | None = None
    appid: str | None = None
    rate: float | None = None
    count: int | None = None
    after: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultRule:
        if not isinstance(raw, dict):
            raise ValueError(f"a fault rule must be an object, got {raw!r}")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        rule = cls(
            kind=kind,
            path=raw.get("path"),
            appid=raw.get("appid"),
            rate=float(raw["rate"]) if raw.get("rate") is not None else None,
            count=int(raw["count"]) if raw.get("count") is not None else None,
            after=int(raw.get("after") or 0),
            params={k: v for k, v in raw.items() if k not in {"kind", "path", "appid", "rate", "count", "after"}},
        )
        if kind == "errcode" and not isinstance(rule.params.get("errcode"), int):
            raise ValueError("an errcode rule needs an integer 'errcode'")
        if kind == "http_status":
            rule.params["status"] = int(rule.params.get("status", 500))
        if kind == "slow":
            rule.params["delay"] = float(rule.params.get("delay", 1.0))
        if kind == "fewer_rows":
            rule.params["keep"] = int(rule.params.get("keep", 1))
        if kind == "bad_rows" and rule.params.get("variant") not in BAD_ROWS_VARIANTS:
            raise ValueError(f"a bad_rows rule needs a 'variant' out of {', '.join(BAD_ROWS_VARIANTS)}")
        return rule

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, **self.params}
        for name in ("path", "appid", "rate", "count"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.after:
            out["after"] = self.after
        out["seen"], out["fired"] = self.seen, self.fired
        return out

    def matches(self, path: str, appid: str | None) -> bool:
        if self.path is not None and not path.startswith(self.path):
            return False
        return self.appid is None or self.appid == appid


class FaultBook:
    """The active rules; thread-safe."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)

    def set(self, rules: list[dict[str, Any]]) -> None:
        parsed = [FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules = parsed
            self._rng = random.Random(self._seed)

    def clear(self) -> None:
        self.set([])

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def draw(self, path: str, appid: str | None, kinds: frozenset[str]) -> list[FaultRule]:
        """Rules of ``kinds`` that fire for this request, consumed atomically."""
        fired: list[FaultRule] = []
        terminal_taken = False
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not rule.matches(path, appid):
                    continue
                if rule.kind in TERMINAL_KINDS and terminal_taken:
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                fired.append(rule)
                terminal_taken = terminal_taken or rule.kind in TERMINAL_KINDS
        return fired
