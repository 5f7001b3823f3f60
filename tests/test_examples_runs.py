"""Every example in examples/ runs to completion, as a user runs it (a subprocess from the
repository root, bounded by a timeout), and prints what its README line promises."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: example -> (modules it needs, text its output must contain)
CASES = {
    "starlette_service.py": (("starlette", "uvicorn", "opentelemetry.sdk"),
                             ["GET /profile/1 -> 200", "span 'GET /profile", "done:"]),
    "flask_wsgi.py": (("flask",), ["GET /orders/10 -> 200", "done:"]),
    "fastapi_service.py": (("fastapi", "uvicorn"),
                           ["GET /orders/10 -> 200", "users saw the caller's trace id: True",
                            "spent deadline -> 504", "-> 503, Retry-After: 2", "done:"]),
    "django_service.py": (("django",),
                          ["GET /orders/10 -> 200", "users saw the caller's trace id: True",
                           "spent deadline -> 504", "(async view) -> 200: attempt 2", "done:"]),
    "canary_policy.py": ((), ["step   0%: policy 'canary-0'"]),
    "dns_srv.py": (("dns",), []),
    "tenacity_retrying.py": ((), ["sync: 'row 42' after 3 attempts",
                                  "GET http://orders/orders/42 -> 200", "async: 'row 42'",
                                  "orders budget: 4 retries recorded, 0 refused", "done:"]),
    "wrap_client.py": ((), ["P2C peak-EWMA (the default) over the endpoints:",
                            "round robin (balancer.kind = round-robin): "
                            "{'users-0': 2, 'users-1': 2, 'users-2': 2}",
                            "passthrough reached users-0 as 127.0.0.2"]),
}


def _run(name: str) -> subprocess.CompletedProcess[str]:
    """`python examples/NAME`, importing this checkout's meshclient (a script's directory,
    not the cwd, is first on sys.path, so without PYTHONPATH an installed copy would win)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHCLIENT_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name: str) -> None:
    needs, expected = CASES[name]
    for module in needs:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{name} needs {module}")
    done = _run(name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip(), "an example should show what it did"
    for text in expected:
        assert text in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    if name == "starlette_service.py" and "MeshMiddleware is not in this build" not in done.stdout:
        # with tracing built in: client spans, and the trace context reaches the backend
        assert " CLIENT " in done.stdout and "traceparent sent: 00-" in done.stdout
    if name == "canary_policy.py":
        # With routing in the build every step's split is printed; without, the rollout
        # stops on the rejected file and says so (the last good policy stays in force).
        if "rollout stopped" in done.stdout:
            assert "stays in force" in done.stdout
        else:
            assert ("step 100%: policy 'canary-100': users-v2 answered 200/200"
                    in done.stdout)


def test_every_example_is_tested_and_listed() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    readme = (EXAMPLES / "README.md").read_text()
    assert scripts <= set(CASES), scripts - set(CASES)
    for name in CASES:
        assert f"examples/{name}" in readme, f"{name} has no line in examples/README.md"
