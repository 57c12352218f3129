"""timex: kernel clock discipline state from adjtimex(2) (read-only call, ``modes = 0``).

Scaling follows node_exporter and adjtimex(2) NOTES: offset and jitter are in ns when
STA_NANO is set (else us), frequencies are ppm with a 16-bit fraction, and
``sync_status`` is 0 when the call returns TIME_ERROR (clock not synchronised).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_TIME_ERROR = 5
_STA_NANO = 0x2000
_PPM16 = 1_000_000.0 * 65536.0
_US = 1_000_000.0


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; ctypes applies the C ABI's natural alignment.
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def read_timex() -> tuple[int, _Timex]:
    state = _Timex()
    result = _libc.adjtimex(ctypes.byref(state))
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, "adjtimex failed")
    return result, state


@register("timex")
class TimexCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        result, t = read_timex()
        divisor = 1e9 if t.status & _STA_NANO else _US
        gauges = (
            (
                "node_timex_offset_seconds",
                "Time offset in between local system and reference clock.",
                t.offset / divisor,
            ),
            (
                "node_timex_frequency_adjustment_ratio",
                "Local clock frequency adjustment.",
                1 + t.freq / _PPM16,
            ),
            ("node_timex_maxerror_seconds", "Maximum error in seconds.", t.maxerror / _US),
            ("node_timex_estimated_error_seconds", "Estimated error in seconds.", t.esterror / _US),
            ("node_timex_status", "Value of the status array bits.", float(t.status)),
            (
                "node_timex_loop_time_constant",
                "Phase-locked loop time constant.",
                float(t.constant),
            ),
            ("node_timex_tick_seconds", "Seconds between clock ticks.", t.tick / _US),
            ("node_timex_pps_frequency_hertz", "Pulse per second frequency.", t.ppsfreq / _PPM16),
            ("node_timex_pps_jitter_seconds", "Pulse per second jitter.", t.jitter / divisor),
            ("node_timex_pps_shift_seconds", "Pulse per second interval duration.", float(t.shift)),
            (
                "node_timex_pps_stability_hertz",
                "Pulse per second stability, average of recent frequency changes.",
                t.stabil / _PPM16,
            ),
            (
                "node_timex_tai_offset_seconds",
                "International Atomic Time (TAI) offset.",
                float(t.tai),
            ),
            (
                "node_timex_sync_status",
                "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
                0.0 if result == _TIME_ERROR else 1.0,
            ),
        )
        counters = (
            (
                "node_timex_pps_jitter_total",
                "Pulse per second count of jitter limit exceeded events.",
                t.jitcnt,
            ),
            (
                "node_timex_pps_calibration_total",
                "Pulse per second count of calibration intervals.",
                t.calcnt,
            ),
            (
                "node_timex_pps_error_total",
                "Pulse per second count of calibration errors.",
                t.errcnt,
            ),
            (
                "node_timex_pps_stability_exceeded_total",
                "Pulse per second count of stability limit exceeded events.",
                t.stbcnt,
            ),
        )
        families: list[Metric] = [GaugeFamily(n, h, value=v) for n, h, v in gauges]
        for name, help_text, value in counters:
            family = CounterFamily(name, help_text)
            family.add_metric([], float(value))
            families.append(family)
        return families
