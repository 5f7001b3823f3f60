"""`--plot FILE.png`: latency and success over time for both clients, with the failure
phases shaded and every phase labelled. Needs matplotlib (the `demo` extra); drawn with
the Agg backend, so no display is needed."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .driver import Sample
from .scenario import Phase
from .stats import series

COLOURS = {"meshclient": "tab:blue", "round-robin": "tab:orange"}


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(path: str, samples: Sequence[Sample], timeline: Sequence[tuple[Phase, float, float]],
         clients: Sequence[str], duration: float) -> None:
    """Write the picture to `path` (any format matplotlib knows by extension)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(0.25, duration / 60)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for client in clients:
        s = series(samples, client, width, duration)
        colour = COLOURS.get(client)
        top.plot(s.t, s.p99_ms, color=colour, lw=1.8, label=f"{client} p99")
        top.plot(s.t, s.p50_ms, color=colour, lw=1, ls="--", label=f"{client} p50")
        bottom.plot(s.t, [x * 100 if not math.isnan(x) else x for x in s.success],
                    color=colour, lw=1.5, label=client)
    top.set_yscale("log")
    top.set_ylabel("latency (ms, log)")
    bottom.set_ylabel("success (%)")
    bottom.set_ylim(0, 105)
    bottom.set_xlabel("seconds")
    for phase, start, end in timeline:
        for ax in (top, bottom):
            if phase.failure:
                ax.axvspan(start, end, color="tab:red", alpha=0.08, lw=0)
            ax.axvline(start, color="grey", lw=0.5, alpha=0.5)
        top.text((start + end) / 2, 1.01, phase.title, transform=top.get_xaxis_transform(),
                 ha="center", va="bottom", fontsize=8,
                 color="tab:red" if phase.failure else "dimgrey")
    top.legend(loc="upper right", fontsize=8, ncol=2)
    bottom.legend(loc="lower left", fontsize=8)
    top.set_xlim(0, duration)
    fig.suptitle("meshclient vs plain round robin, same offered load (failure phases shaded)",
                 fontsize=10, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
