"""benchmarks/record.py: a result says which commit measured it, and whether the code differed
from that commit, and its own provenance cannot be overwritten by a benchmark's fields."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import benchmark_module

REPO = Path(__file__).resolve().parents[1]


def load_record():
    return benchmark_module("record")


def git(where: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch):
    """A git repository laid out as zoo's (zoo/, benchmarks/), with record.py's paths in it."""
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "metrics.py").write_text("FID = 1\n")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "bench.py").write_text("print('bench')\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    record = load_record()
    monkeypatch.setattr(record, "HERE", tmp_path / "benchmarks")
    monkeypatch.setattr(record, "RESULTS", tmp_path / "benchmarks" / "results")
    return tmp_path, record


def test_a_result_of_changed_code_says_so(repo) -> None:
    root, record = repo
    head = git(root, "rev-parse", "--short=12", "HEAD")
    assert record.commit() == head
    (root / "benchmarks" / "results" / "x.json").write_text("{}\n")  # results alone change no code
    git(root, "add", "benchmarks/results/x.json")
    assert record.commit() == head
    (root / "zoo" / "metrics.py").write_text("FID = 2\n")
    assert record.commit() == f"{head}+changes"
    git(root, "checkout", "--", "zoo")
    (root / "benchmarks" / "bench.py").write_text("print('changed')\n")
    assert record.commit() == f"{head}+changes"


def test_fields_cannot_replace_the_records_own_provenance(repo) -> None:
    root, record = repo
    with pytest.raises(ValueError, match="command"):
        record.write_result("toy", {"fid": 1.0}, command="zoo train dcgan")
    assert not (root / "benchmarks" / "results" / "toy.json").exists()
    path = record.write_result("toy", {"fid": 1.0}, zoo_command="zoo train dcgan", steps=3)
    written = json.loads(path.read_text())
    assert written["command"].startswith("python ") and written["zoo_command"] == "zoo train dcgan"
    assert written["steps"] == 3 and written["figures"] == {"fid": 1.0}


def test_figures_are_numbers_and_their_text_is_kept_beside_them(repo) -> None:
    _, record = repo
    figures = {"fid": 18.05, "steps": 1560, "identical": True, "protocol": "fid10k/classifier:mnist",
               "train": {"command": "zoo train dcgan --data mnist", "seconds": 204.7},
               "top": [{"operator": "aten::convolution_backward", "share": 0.55}],
               "read_as_asked": [0.97, 0.99]}
    written = json.loads(record.write_result("toy", figures).read_text())
    assert written["figures"] == {"fid": 18.05, "steps": 1560, "identical": True, "train": {"seconds": 204.7},
                                  "top": [{"share": 0.55}], "read_as_asked": [0.97, 0.99]}
    assert written["details"] == {"protocol": "fid10k/classifier:mnist",
                                  "train": {"command": "zoo train dcgan --data mnist"},
                                  "top": [{"operator": "aten::convolution_backward"}]}
    assert "details" not in json.loads(record.write_result("plain", {"fid": 1.0}).read_text())
