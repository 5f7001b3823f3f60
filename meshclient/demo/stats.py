"""Numbers from samples: percentiles, per-phase summaries, time series for the plot.

Latency percentiles cover every request, failed ones included (a fast failure and a slow
success both count as what the caller saw); the success rate is reported beside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .driver import Sample


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..100) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Stat:
    """One client over one slice of the run."""

    count: int
    success: float  # 0..1, NaN when empty
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Stat:
        items = list(samples)
        if not items:
            return cls(0, math.nan, math.nan, math.nan)
        latencies = [s.latency_ms for s in items]
        ok = sum(1 for s in items if s.ok)
        return cls(len(items), ok / len(items), percentile(latencies, 50),
                   percentile(latencies, 99))


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the summary table: a phase (or "overall") and each client's `Stat`."""

    label: str
    stats: dict[str, Stat]


def summarize(samples: Sequence[Sample], phases: Sequence[tuple[str, float, float]],
              clients: Sequence[str]) -> list[Row]:
    """One row per `(label, start_s, end_s)` phase, by request start time, then "overall"."""
    rows = []
    for label, start, end in phases:
        rows.append(Row(label, {c: Stat.of(s for s in samples if s.client == c
                                           and start <= s.t < end) for c in clients}))
    rows.append(Row("overall", {c: Stat.of(s for s in samples if s.client == c)
                                for c in clients}))
    return rows


@dataclass(frozen=True, slots=True)
class Series:
    """Per-bin figures of one client: bin centres (s), p50 and p99 latency (ms), success."""

    t: list[float]
    p50_ms: list[float]
    p99_ms: list[float]
    success: list[float]


def series(samples: Sequence[Sample], client: str, width_s: float, end_s: float) -> Series:
    """Bins of `width_s` seconds from 0 to `end_s` (empty bins are NaN)."""
    n = max(1, math.ceil(end_s / width_s))
    bins: list[list[Sample]] = [[] for _ in range(n)]
    for s in samples:
        if s.client == client and 0 <= s.t < end_s:
            bins[min(n - 1, int(s.t / width_s))].append(s)
    out = Series([], [], [], [])
    for i, items in enumerate(bins):
        stat = Stat.of(items)
        out.t.append((i + 0.5) * width_s)
        out.p50_ms.append(stat.p50_ms)
        out.p99_ms.append(stat.p99_ms)
        out.success.append(stat.success)
    return out


def fmt_pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.1f}%"


def fmt_ms(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def table(rows: Sequence[Row], clients: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the summary: phase, then success/p50/p99 for each client."""
    header = ["phase"]
    for c in clients:
        header += [f"{c} ok", f"{c} p50", f"{c} p99"]
    cells = []
    for row in rows:
        line = [row.label]
        for c in clients:
            st = row.stats[c]
            line += [fmt_pct(st.success), fmt_ms(st.p50_ms), fmt_ms(st.p99_ms)]
        cells.append(line)
    return header, cells


def plain_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    """Fixed-width text lines of a table (first column left-aligned, others right)."""
    widths = [max(len(str(r[i])) for r in [header, *cells]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                 for i, v in enumerate(row)]
        return "  ".join(parts)

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]
