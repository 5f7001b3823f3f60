"""Rich live output for a real terminal: a live per-endpoint table, with narration and
events printed above it. Used only when rich imports and stdout is a TTY (see
`choose_renderer`); refreshed by the demo's own loop (no refresh thread)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .scenario import Phase, secs
from .view import View, budget_label, latency_label, state_label

_STATE_STYLE = {"closed": "green", "half-open": "yellow", "open": "bold red",
                "ejected": "bold red"}


class RichRenderer:
    def __init__(self, duration: float) -> None:
        self.console = Console()
        self.duration = duration
        self._title = "starting"
        self._live: Live | None = None

    def begin(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.console.print(line, highlight=False)
        self._live = Live(Text(""), console=self.console, auto_refresh=False,
                          transient=False)
        self._live.start()

    def phase(self, index: int, count: int, phase: Phase, start: float, end: float) -> None:
        self._title = f"phase {index}/{count}: {phase.title}"
        style = "bold red" if phase.failure else "bold cyan"
        self.console.print()
        self.console.print(Text(f"▶ {self._title} ({secs(start)}-{secs(end)}s)", style=style))
        self.console.print(Text(f"  {phase.story}", style="dim"))

    def say(self, t: float, text: str) -> None:
        self.console.print(Text(f"  {t:5.1f}s  {text}"), highlight=False)

    def update(self, view: View, retries: int, refused: int) -> None:
        if self._live is None:
            return
        table = Table(title=f"{self._title}   t={view.t:4.1f}/{self.duration:.0f}s   "
                      f"policy {view.policy!r}", title_justify="left", expand=False)
        for column in ("service", "endpoint", "share", "latency", "state", "in flight",
                       "requests", "failures"):
            table.add_column(column, justify="left" if column in ("service", "endpoint",
                                                                 "share") else "right")
        for service in view.services:
            for i, ep in enumerate(service.endpoints):
                share = ep.share or 0.0
                bar = "█" * round(share * 20)
                state = state_label(ep)
                table.add_row(service.name if i == 0 else "", ep.name,
                              f"{bar:<20} {share * 100:3.0f}%" if ep.share is not None else "-",
                              latency_label(ep), Text(state, style=_STATE_STYLE.get(state, "")),
                              str(ep.in_flight), str(ep.requests), str(ep.failures))
            table.add_row("", Text(budget_label(service), style="dim"), "", "", "", "", "", "",
                          end_section=True)
        footer = f"retries {retries}   refused by budget {refused}"
        if view.canary_share is not None:
            footer += f"   users answered by users-v2: {view.canary_share * 100:.0f}%"
        self._live.update(Group(table, Text(footer, style="bold")), refresh=True)

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self, title: str, header: Sequence[str], cells: Sequence[Sequence[str]],
                notes: Sequence[str]) -> None:
        table = Table(title=title, title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in cells:
            style: Any = "bold" if row[0] == "overall" else None
            table.add_row(*row, style=style)
        self.console.print(table)
        for note in notes:
            self.console.print(note, highlight=False)
