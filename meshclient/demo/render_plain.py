"""Plain-line output: CI logs, pipes, `--plain`, or no rich. One line per event, a status
block every few seconds, and the summary as a fixed-width table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from .scenario import Phase
from .stats import plain_table
from .view import View, budget_label, latency_label, state_label


class PlainRenderer:
    """Writes to `out` (stdout); prints a status block at most every `status_every` s."""

    def __init__(self, status_every: float, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.status_every = status_every
        self._last_status = -1e9

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def begin(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._print(line)

    def phase(self, index: int, count: int, phase: Phase, start: float, end: float) -> None:
        self._print()
        self._print(f"== phase {index}/{count}: {phase.title} ({start:.0f}-{end:.0f}s) ==")
        self._print(f"   {phase.story}")

    def say(self, t: float, text: str) -> None:
        self._print(f"[{t:5.1f}s] {text}")

    def update(self, view: View, retries: int, refused: int) -> None:
        if view.t - self._last_status < self.status_every:
            return
        self._last_status = view.t
        self._print(f"[{view.t:5.1f}s] status (policy {view.policy!r}, retries {retries}, "
                    f"refused by budget {refused}):")
        for service in view.services:
            cells = []
            for ep in service.endpoints:
                share = "-" if ep.share is None else f"{ep.share * 100:.0f}%"
                cells.append(f"{ep.name} {share} {latency_label(ep)} {state_label(ep)}")
            self._print(f"   {service.name:<9} " + " | ".join(cells)
                        + f"   [{budget_label(service)}]")
        if view.canary_share is not None:
            self._print(f"   users answered by users-v2: {view.canary_share * 100:.0f}%")

    def end(self) -> None:
        self._print()

    def summary(self, title: str, header: Sequence[str], cells: Sequence[Sequence[str]],
                notes: Sequence[str]) -> None:
        self._print(title)
        for line in plain_table(header, cells):
            self._print("  " + line)
        for note in notes:
            self._print(note)
