"""The `meshclient` command behaves as command-line tools do: `--version` from the one
version source, quiet when its reader closes the pipe, and a missing optional dependency
reported before any work starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import meshclient
from meshclient.cli import EXIT_BROKEN_PIPE, main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"meshclient {meshclient.__version__}"


def test_the_version_is_written_once() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "meshclient.__version__" }' in pyproject
    assert "\nversion = \"" not in pyproject


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    """`meshclient check good.toml | true`: the reader is gone before the output is written."""
    policy = tmp_path / "good.toml"
    policy.write_text('[services.users]\nendpoints = ["127.0.0.1:8001"]\n')
    read, write = os.pipe()
    os.close(read)  # like `true`: nobody will read
    try:
        done = subprocess.run([sys.executable, "-m", "meshclient", "check", str(policy)],
                              stdout=write, stderr=subprocess.PIPE, text=True, env=ENV,
                              cwd=ROOT, timeout=60)
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == EXIT_BROKEN_PIPE


_NO_MATPLOTLIB = ("import sys; sys.modules['matplotlib'] = None; "  # as if not installed
                  "from meshclient.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow
def test_demo_plot_without_matplotlib_fails_at_once(tmp_path: Path) -> None:
    picture = tmp_path / "x.png"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _NO_MATPLOTLIB, "demo", "--plot", str(picture)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60)
    assert time.monotonic() - started < 30  # the demo itself runs a minute
    assert done.returncode == 2
    assert "needs matplotlib: pip install 'meshclient[demo]'" in done.stderr
    assert done.stdout == "" and not picture.exists()
