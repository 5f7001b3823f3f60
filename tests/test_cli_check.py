"""`meshclient check FILE` (and `python -m meshclient check`): prints the normalised policy,
or every error with its field path and exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshclient.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_prints_normalised_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "mesh.toml", '[services.users]\nendpoints = ["127.0.0.1:8001"]\n'
                  '[defaults.timeout]\ntotal = 10\n')
    assert main(["check", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["defaults"]["timeout"]["total"] == "10s"  # normalised spelling
    assert document["services"]["users"]["endpoints"][0]["address"] == "127.0.0.1:8001"
    assert document["defaults"]["retry"]["attempts"] == 3  # defaults filled in


def test_check_reports_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "bad.json", json.dumps({
        "servces": {},
        "defaults": {"retry": {"budget": {"ratio": 3}}, "timeout": {"total": "soon"}}}))
    assert main(["check", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "3 error(s)" in captured.err
    for needle in ("servces is not a known field",
                   "defaults.retry.budget.ratio must be between 0 and 1: 3",
                   "defaults.timeout.total must be a duration"):
        assert needle in captured.err


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read policy file" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "check" in capsys.readouterr().out


@pytest.mark.slow
def test_python_dash_m(tmp_path: Path) -> None:
    good = _write(tmp_path, "mesh.json", '{"services": {"a": {"endpoints": ["127.0.0.1:1"]}}}')
    bad = _write(tmp_path, "bad.json", '{"services": {"a": {"endpoints": ["x"]}}}')
    run = [sys.executable, "-m", "meshclient", "check"]
    ok = subprocess.run([*run, good], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["services"]["a"]["scheme"] == "http"
    failed = subprocess.run([*run, bad], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "services.a.endpoints[0].address must be host:port: 'x'" in failed.stderr
