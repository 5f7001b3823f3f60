"""`meshclient demo`: a small mesh on loopback, the classic failures one after another,
meshclient and a plain round-robin client side by side on the same traffic.

One module per job: `scenario` (services, policy, phases), `driver` (fixed offered load,
samples), `baseline` (the hand-written round-robin client), `view` (snapshot to display
rows), `narrate` (mesh events to lines), `render_plain` / `render_rich` (output), `stats`
(percentiles, summary), `plot` (matplotlib picture), `runner` (puts them together).
"""

from .runner import Options, run

__all__ = ["Options", "run"]
