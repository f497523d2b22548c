"""The simulator's settable clock.

Token expiry, daily quotas, "end_date must be before today" and the data-ready hour are
all judged on this clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading

#: WeChat's clock: Beijing time, UTC+8 without daylight saving (the simulator keeps its own
#: copy so that nothing in it comes from the provider it tests).
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SimClock:
    """Real time by default; ``set`` freezes it, ``advance`` moves it, ``unfreeze`` lets it run.

    Internally: frozen at ``_frozen`` or running at real time plus ``_offset``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: dt.datetime | None = None
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        """Current simulated time, an aware UTC datetime."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return _real_now() + self._offset

    def beijing_now(self) -> dt.datetime:
        return self.now().astimezone(BEIJING)

    def set(self, moment: dt.datetime) -> None:
        """Freeze the clock at ``moment`` (must be timezone-aware)."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("clock.set needs a timezone-aware datetime")
        with self._lock:
            self._frozen = moment.astimezone(dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative), frozen or not."""
        with self._lock:
            delta = dt.timedelta(seconds=seconds)
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def unfreeze(self) -> None:
        """Let time run again from where the clock stands now."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - _real_now()
                self._frozen = None

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._frozen = None
            self._offset = dt.timedelta(0)

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None
