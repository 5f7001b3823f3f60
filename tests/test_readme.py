"""The README's quick start stays true: two set-up commands, the test one identical to
what `.ci/run` runs, and every docs link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_two_setup_commands() -> None:
    commands = _quick_start()
    assert commands == ["pip install -e '.[demo]' && meshclient demo",
                        "pip install -e '.[test]' && python -m pytest -q"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start()[1] in ci.splitlines()


def test_readme_links_exist() -> None:
    for target in re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README):
        assert (ROOT / target).exists(), target
