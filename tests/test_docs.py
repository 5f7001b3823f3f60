"""Docs move with code: the generated references are current, and the site builds strictly."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshclient.policy._fields import Model, setting
from tests.servers.snippets import blocks, undefined_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_generated_reference_is_current() -> None:
    result = subprocess.run([sys.executable, "docs/gen_reference.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True, slots=True, kw_only=True)
class _Mirror(Model):
    """A section some later work adds."""

    percent: float = setting(0.0, doc="Share of requests copied.", lo=0, hi=100)
    delay: float | None = setting(None, doc="Wait before copying.", above=0, duration=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Route(Model):
    """One route."""

    prefix: str = setting("/", doc="Path prefix.")
    mirror: _Mirror | None = setting(None, doc="Mirroring.")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Root(Model):
    """Root."""

    routes: tuple[_Route, ...] = setting((), doc="Routes, first match wins.")


def test_generator_walks_new_sections_generically() -> None:
    text = _generator().policy_reference(_Root)
    assert "## _Mirror" in text and "At: `routes[].mirror`" in text
    assert "| `percent` | number | `0.0` | ≥ 0, ≤ 100 | Share of requests copied. |" in text
    assert "| `delay` | duration (optional) | unset | > 0 | Wait before copying. |" in text


def test_every_policy_field_is_documented() -> None:
    text = (ROOT / "docs" / "reference" / "policy.md").read_text()
    for cls, _paths in _generator()._walk():
        assert f"## {cls.__name__}" in text
        for name, f in cls.__dataclass_fields__.items():
            if f.init:
                assert f.metadata.get("doc"), f"{cls.__name__}.{name} has no doc="


@pytest.mark.slow
def test_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# Every Python block in README.md and docs/ runs (tests/servers/snippets.py says how: local
# backends for the addresses it names, a loopback-only network), or says why not.
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
SNIPPET_PAGES = [p for p in PAGES if blocks(p, ROOT)]
#: Blocks that cannot run standalone; each carries `<!-- no-run: reason -->`. Raising this
#: number needs a reason a reviewer accepts: a new block should run.
NO_RUN = 11


@pytest.mark.slow
@pytest.mark.parametrize("page", SNIPPET_PAGES, ids=[str(p.relative_to(ROOT)) for p in SNIPPET_PAGES])
def test_snippets_run(page: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHCLIENT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    done = subprocess.run([sys.executable, "-m", "tests.servers.snippets",
                           str(page.relative_to(ROOT)), str(ROOT)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = done.stdout.count(": ran\n")
    marked = sum(b.no_run is not None or bool(b.needs) for b in blocks(page, ROOT))
    assert ran + marked == len(blocks(page, ROOT)), done.stdout


def test_blocks_that_do_not_run_say_why() -> None:
    every = [b for p in PAGES for b in blocks(p, ROOT)]
    no_run = [b for b in every if b.no_run is not None]
    for block in no_run:
        assert len(block.no_run or "") >= 10, f"{block.where}: give the reason in a few words"
    assert len(no_run) <= NO_RUN, [b.where for b in no_run]
    assert 2 * len(no_run) < len(every), "most blocks run"


def test_the_checker_finds_undefined_names() -> None:
    code = "client = meshclient.Client()\nprint(client, policy)\n"
    assert undefined_names(code, {"policy"}) == {"meshclient"}
    assert undefined_names("import meshclient\nmeshclient.Client()\n", set()) == set()
    assert undefined_names("def f():\n    x = 1\n    return x + y\n", set()) == {"y"}
