"""The sync shell is generated from the async one (`scripts/unasync.py`), and is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "unasync.py"


def _load() -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("unasync_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_sync_shell_is_generated() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_fails_on_a_stale_sync_module(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    unasync = _load()
    source = tmp_path / "a.py"
    source.write_text("async def go(t: AsyncMeshTransport) -> None:\n"
                      "    await t.handle_async_request(r)\n    await t.aclose()\n")
    target = tmp_path / "s.py"
    target.write_text("stale\n")
    monkeypatch.setattr(unasync, "ROOT", tmp_path)
    monkeypatch.setattr(unasync, "FILES", [("a.py", "s.py")])
    main = unasync.main
    assert main(["--check"]) == 1
    assert target.read_text() == "stale\n"  # --check changes nothing
    assert main([]) == 0 and main(["--check"]) == 0
    generated = target.read_text()
    assert "def go(t: MeshTransport) -> None:\n    t.handle_request(r)\n    t.close()\n" in generated
    assert generated.startswith("# GENERATED from a.py")


def test_substitutions_keep_other_words() -> None:
    out = _load().unasync("x = awaited\ny = await z.aclose_all()\n"
                  "# unasync: source only\nsecret\n# unasync: end\nwatch_async(r)\n", "a.py")
    assert "x = awaited\ny = z.aclose_all()\nwatch_sync(r)\n" in out and "secret" not in out
