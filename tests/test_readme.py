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


def test_quick_start_says_what_it_assumes_and_how_long_the_demo_runs() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "clone" in section and "virtualenv" in section
    assert "about a minute" in section
    assert "scripts/install-test-servers.sh" in section
    assert (ROOT / "scripts" / "install-test-servers.sh").exists()


def test_one_overhead_figure() -> None:
    """The README and the docs' front page quote the same cost, with the command behind it."""
    index = (ROOT / "docs" / "index.md").read_text()
    figures = [re.findall(r"adds (\d+-\d+) µs of CPU per\s+request", text) for text in (README, index)]
    assert figures[0] and figures[0] == figures[1], figures
    assert "python -m benchmarks.overhead" in README and "python -m benchmarks.overhead" in index


def test_client_options_caveat_is_in_the_readme() -> None:
    assert "http2=True" in README and "meshclient.Client(policy=policy, http2=True" in README


def test_no_build_history_in_code_or_docs() -> None:
    """Comments and docs describe the software, not how or in what order it was built."""
    pattern = re.compile(r"issue[- ]?[0-9]|\(issue [0-9]|DESIGN\.md", re.I)
    paths = [ROOT / "README.md"]
    for folder, suffix in (("meshclient", "*.py"), ("docs", "*.md"), ("examples", "*"),
                           ("benchmarks", "*.py")):
        paths += [p for p in (ROOT / folder).rglob(suffix) if p.is_file()]
    found = [f"{p.relative_to(ROOT)}:{n}" for p in paths if p.suffix in (".py", ".md")
             for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
