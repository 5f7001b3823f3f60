"""Plain-line output: CI logs, pipes, `--plain`, or no rich. One line per event, a status
block twice per phase (mid-way and near its end), and the summary as a fixed-width table."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from .scenario import Phase, secs
from .stats import plain_table
from .view import View, budget_label, latency_label, state_label


class PlainRenderer:
    """Writes to `out` (stdout)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._due: list[float] = []

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def begin(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._print(line)

    def phase(self, index: int, count: int, phase: Phase, start: float, end: float) -> None:
        self._print()
        self._print(f"== phase {index}/{count}: {phase.title} ({secs(start)}-{secs(end)}s) ==")
        self._print(textwrap.fill(phase.story, width=100, initial_indent="   ",
                                  subsequent_indent="   "))
        self._due = [start + 0.45 * (end - start), start + 0.92 * (end - start)]

    def say(self, t: float, text: str) -> None:
        self._print(f"[{t:5.1f}s] {text}")

    def update(self, view: View, retries: int, refused: int) -> None:
        if not self._due or view.t < self._due[0]:
            return
        while self._due and view.t >= self._due[0]:
            self._due.pop(0)
        self._print(f"[{view.t:5.1f}s] status (policy {view.policy!r}, retries {retries}, "
                    f"refused by budget {refused}):")
        for service in view.services:
            cells = []
            for ep in service.endpoints:
                share = "-" if ep.share is None else f"{ep.share * 100:.0f}%"
                state = state_label(ep)
                cells.append(f"{ep.name} {share} {latency_label(ep)}"
                             + ("" if state == "-" else f" {state.upper()}"))
            budget = budget_label(service)
            self._print(f"   {service.name:<8} " + " | ".join(cells)
                        + ("" if budget.endswith("not in this build") else f"  [{budget}]"))
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
