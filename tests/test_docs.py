"""Docs move with code: the generated references are current, and the site builds strictly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshclient.policy._fields import Model, setting

ROOT = Path(__file__).resolve().parents[1]


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


def test_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
