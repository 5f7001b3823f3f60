"""The sidecar benchmark's output: the table (medians over the rounds, with their range),
each target met or not, and the plot."""

from __future__ import annotations

import statistics

from benchmarks._common import table

#: One sample's figures: rps, cpu_us, client_cpu_us, queued_us (the client's run-queue
#: wait per request), p50_ms, p99_ms.
Sample = dict[str, float]
#: (shell, backends, concurrency, client) -> one sample per round.
Results = dict[tuple[str, int, int, str], list[Sample]]


def _median(samples: list[Sample], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _span(values: list[float], digits: int = 0) -> str:
    """`min-max` of the rounds' values."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def ratios(results: Results, key: tuple[str, int, int, str]) -> list[float]:
    """Per round: the variant's throughput over `bare-spread`'s (same level, same round)."""
    ref = results.get((*key[:3], "bare-spread"))
    if not ref:
        return []
    return [a["rps"] / b["rps"] for a, b in zip(results[key], ref, strict=True)]


def report(results: Results) -> str:
    """Medians over the rounds, with the rounds' range for throughput, ratio and CPU;
    "queued": microseconds per request the client's callers waited for a CPU."""
    rows = []
    for key, samples in results.items():
        shell, fleet, c, name = key
        rps, ratio = [s["rps"] for s in samples], ratios(results, key)
        cpu = [s["cpu_us"] for s in samples]
        rows.append((shell, fleet, c, name, round(statistics.median(rps)), _span(rps),
                     f"{statistics.median(ratio):.2f}" if ratio else "-",
                     _span(ratio, 2) if ratio else "-", round(statistics.median(cpu)), _span(cpu),
                     round(_median(samples, "client_cpu_us")),
                     round(_median(samples, "queued_us")),
                     _median(samples, "p50_ms"), _median(samples, "p99_ms")))
    return table(rows, ("shell", "backends", "c", "client", "req/s", "range", "vs spread",
                        "range", "CPU us/req", "range", "client CPU", "queued", "p50 ms",
                        "p99 ms"))


def _target(shell: str, c: int) -> float | None:
    """The mesh/spread throughput target at this level (None: no target)."""
    if shell == "async" and c >= 64:
        return 1.10
    return 1.0 if c == 16 else None


def verdicts(results: Results) -> list[str]:
    """Each target, met or not (on the medians), with the figure and the rounds' range."""
    lines = []
    for key, samples in results.items():
        shell, fleet, c, name = key
        want = _target(shell, c)
        if name != "mesh":
            continue
        if want is not None:
            ratio = ratios(results, key)
            got = statistics.median(ratio)
            lines.append(f"{shell} {fleet} backends c={c}: mesh/spread throughput {got:.2f} "
                         f"({_span(ratio, 2)}) {'meets' if got >= want else 'MISSES'} "
                         f">= {want:.2f}")
        for proxy in ("haproxy", "nginx"):
            other = results.get((shell, fleet, c, proxy))
            if other:
                mine, theirs = _median(samples, "cpu_us"), _median(other, "cpu_us")
                lines.append(f"{shell} c={c}: mesh CPU/request {mine:.0f} us "
                             f"{'below' if mine < theirs else 'NOT below'} {proxy}'s "
                             f"client+proxy {theirs:.0f} us")
    return lines


def plot(results: Results, path: str, title: str = "") -> bool:
    """Throughput (median, bars: the rounds' range) and CPU per request by concurrency,
    per client, 3 backends; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for col, shell in enumerate(("sync", "async")):
        names = sorted({k[3] for k in results if k[0] == shell and k[1] == 3})
        for name in names:
            keys = sorted(k for k in results if k[:2] == (shell, 3) and k[3] == name)
            xs = [str(k[2]) for k in keys]
            for row, field in enumerate(("rps", "cpu_us")):
                values = [[s[field] for s in results[k]] for k in keys]
                mid = [statistics.median(v) for v in values]
                axes[row][col].errorbar(xs, mid, marker="o", capsize=3, label=name, yerr=[
                    [m - min(v) for m, v in zip(mid, values, strict=True)],
                    [max(v) - m for m, v in zip(mid, values, strict=True)]])
        axes[0][col].set_title(f"{shell}, 3 backends{title}")
        axes[1][col].set_xlabel("concurrency")
    axes[0][0].set_ylabel("requests/s")
    axes[1][0].set_ylabel("CPU us/request (client+proxy)")
    axes[0][1].legend()
    fig.tight_layout()
    fig.savefig(path)
    return True
