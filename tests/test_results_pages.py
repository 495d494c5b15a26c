"""The results pages (docs/results/) are views of the committed benchmark results: every figure
on them is read from a JSON file under benchmarks/results/, and a page out of step with its
files fails here (`python benchmarks/pages.py` writes them again)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import benchmark_module

REPO = Path(__file__).resolve().parents[1]


def load_pages():
    return benchmark_module("pages")


@pytest.fixture()
def pages():
    return load_pages()


def test_every_results_page_is_up_to_date_with_its_results(pages) -> None:
    assert pages.stale() == [], "run: python benchmarks/pages.py"


def test_every_result_says_how_when_and_where_it_was_measured() -> None:
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results, "no benchmark results are committed"
    for path in results:
        record = json.loads(path.read_text())
        assert record["benchmark"] == path.stem, path.name
        for key in ("command", "commit", "date", "figures"):
            assert record[key], f"{path.name} has no {key}"
        assert {"cpu", "cores", "torch"} <= set(record["machine"]), path.name


def test_the_results_behind_the_pages_are_committed(pages) -> None:
    used = set()
    for template in pages.TEMPLATES.glob("*.md"):
        for body in pages.PLACEHOLDER.findall(template.read_text()):
            if body.startswith("preset "):  # a preset's result file: checked by rendering the page
                continue
            used.add(body.removeprefix("source ").split(":")[0].split("|")[0].strip())
    assert used, "no page quotes a result"
    tracked = subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    missing = sorted(name for name in used if f"benchmarks/results/{name}.json" not in tracked)
    assert missing == [], f"results quoted by docs/results but not committed: {missing}"


def test_a_figure_follows_its_result_and_a_missing_one_is_named(pages, tmp_path: Path, monkeypatch) -> None:
    results, templates = tmp_path / "results", tmp_path / "templates"
    results.mkdir()
    templates.mkdir()
    record = {"benchmark": "toy", "command": "python benchmarks/toy.py", "commit": "abc",
              "date": "2026-12-06T00:00:00Z",
              "machine": {"cpu": "a CPU", "cores": 2, "gpu": None, "torch": "2.x"},
              "figures": {"fid": 12.3456, "steps": 1560, "rows": [{"share": 0.968}]}}
    (results / "toy.json").write_text(json.dumps(record))
    (templates / "toy.md").write_text("FID {{ toy:figures.fid | .1f }} after {{ toy:figures.steps }} steps, "
                                      "{{ toy:figures.rows.0.share | .1% }}.\n{{ source toy }}\n")
    monkeypatch.setattr(pages, "RESULTS", results)
    monkeypatch.setattr(pages, "TEMPLATES", templates)
    monkeypatch.setattr(pages, "PAGES", tmp_path / "docs")
    pages.result.cache_clear()
    page = pages.render()[tmp_path / "docs" / "toy.md"]
    assert "FID 12.3 after 1,560 steps, 96.8%." in page
    assert "`python benchmarks/toy.py` at commit `abc`, 2026-12-06, on 2 cores of a CPU, no GPU" in page
    assert pages.stale() == [str(tmp_path / "docs" / "toy.md")]  # not written yet

    (templates / "toy.md").write_text("{{ toy:figures.recall }}")
    pages.result.cache_clear()
    with pytest.raises(pages.PageError, match="toy.md: toy.json has no 'figures.recall'"):
        pages.render()


def test_a_pages_preset_line_names_a_preset_that_exists(pages) -> None:
    assert "`zoo train cgan --preset lab`" in pages.fill("{{ preset cgan lab }}", "t.md")
    with pytest.raises(pages.PageError, match="no such preset"):
        pages.fill("{{ preset cgan nope }}", "t.md")
