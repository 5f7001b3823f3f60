"""`import meshclient` stays cheap: it loads httpx and meshclient's own error types, and the
rest (transports, policy, tenacity, pybreaker, opentelemetry, dnspython, servers) loads on
first use. `python -m benchmarks.imports` measures the time; this checks the cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_LOADED = "import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"


def _modules_after(module: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    out = subprocess.run([sys.executable, "-c", _LOADED.format(module=module)], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout))


@pytest.mark.slow
def test_import_loads_nothing_beyond_httpx_but_meshclient_itself() -> None:
    extra = _modules_after("meshclient") - _modules_after("httpx")
    assert {m for m in extra if m.split(".")[0] != "meshclient"} == set()
    assert extra <= {"meshclient", "meshclient._extensions", "meshclient.errors"}, sorted(extra)
    for heavy in ("tenacity", "pybreaker", "opentelemetry", "dns", "http.server", "redis"):
        assert heavy not in extra, heavy


@pytest.mark.slow
def test_names_load_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, meshclient; t = meshclient.MeshTransport; "
         "print('meshclient.transport' in sys.modules, t.__module__, t is meshclient.MeshTransport)"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=True, timeout=60)
    assert out.stdout.split() == ["True", "meshclient", "True"]


def test_unknown_name_is_an_attribute_error() -> None:
    import meshclient

    try:
        meshclient.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no AttributeError")
