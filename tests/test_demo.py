"""`meshclient demo` end to end, as a user runs it: a subprocess on real loopback servers,
bounded by a timeout; then the fallbacks when rich and matplotlib are missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], timeout: float = 45) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_demo_runs_to_a_summary_and_a_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the picture needs the demo extra: "
                        "pip install -e '.[demo]'")
    png = tmp_path / "demo.png"
    done = _run(["-m", "meshclient", "demo", "--duration", "8", "--plain", "--plot", str(png)])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for title in ("Warm-up", "Slow endpoint", "Dead endpoint", "Total outage", "Canary 100%"):
        assert f": {title} (" in out  # every phase narrated
    assert "Summary: meshclient vs plain round robin" in out
    summary = out[out.index("Summary:"):]
    assert "overall" in summary and "meshclient p99" in summary and "round-robin ok" in summary
    overall = next(line for line in summary.splitlines() if line.strip().startswith("overall"))
    mesh_ok, rr_ok = (float(x) for x in re.findall(r"([\d.]+)%", overall))
    if "balancer: p2c" in out:  # a build with the resilience features: never behind
        assert mesh_ok >= rr_ok - 2, overall
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_runs_on_the_base_package_alone() -> None:
    """Without rich and matplotlib (blocked at import): plain output. (`--plot` without
    matplotlib is refused before the run: tests/test_cli.py.)"""
    code = ("import sys; sys.modules['rich'] = None; sys.modules['matplotlib'] = None; "
            "from meshclient.cli import main; "
            "sys.exit(main(['demo', '--duration', '4', '--rate', '20']))")
    done = _run(["-c", code])
    assert done.returncode == 0, done.stderr
    assert "(plain output:" in done.stdout
    assert "Summary:" in done.stdout


def test_demo_rejects_a_bad_duration() -> None:
    done = _run(["-m", "meshclient", "demo", "--duration", "1"], timeout=20)
    assert done.returncode == 2
    assert "--duration" in done.stderr and "'1'" in done.stderr
