"""The access log's writer across process boundaries: lines still queued when the
interpreter exits are written (atexit), and a forked child writes its own lines with its
own writer thread while what the parent had queued is written once, by the parent. Real
processes; every wait is bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshclient.policy import AccessLogSettings
from meshclient.telemetry import access_log
from tests.servers.helpers import until

ROOT = Path(__file__).resolve().parents[2]
CHILD_S = 10.0  # the child gives up (and exits 1) after this long

_EXITING = """
import sys
from meshclient.policy import AccessLogSettings
from meshclient.telemetry import access_log
log = access_log.AccessLog(AccessLogSettings(destination=sys.argv[1], flush_interval=3600.0))
for i in range(50):
    log.write({"direction": "inbound", "n": i})
assert log._writer.queued == 50  # nothing written yet: the exit writes them
"""


def test_lines_queued_at_exit_are_written(tmp_path: Path) -> None:
    path = tmp_path / "exit.log"
    done = subprocess.run([sys.executable, "-c", _EXITING, str(path)], cwd=ROOT, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    assert got == list(range(50))


def _child(log: access_log.AccessLog, path: Path) -> int:
    """In the forked child: queue a line and wait for the child's own writer to write it."""
    if log._writer.queued:  # the parent's queue is not the child's
        return 1
    log._writer.flush_interval = 0.02  # the child's writer writes at once (the parent's waits)
    log.write({"who": "child"})
    written = until(lambda: '"who":"child"' in path.read_text(), CHILD_S, every_s=0.01)
    return 0 if written else 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "fork.log"
    log = access_log.AccessLog(AccessLogSettings(destination=str(path),
                                                 flush_interval=3600.0))
    log.write({"who": "parent", "n": 0})
    log.flush()
    log.write({"who": "parent", "n": 1})  # queued in the parent when it forks
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = _child(log, path)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's line was not written"
    log.flush()
    got = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(json.dumps(g, sort_keys=True) for g in got) == sorted(
        json.dumps(g, sort_keys=True) for g in [{"who": "parent", "n": 0},
                                                {"who": "parent", "n": 1},
                                                {"who": "child"}])
