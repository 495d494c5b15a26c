"""Write the results pages, docs/results/*.md, from their templates and the committed results.

    python benchmarks/pages.py            # write every page
    python benchmarks/pages.py --check    # exit 1 and name the pages that are out of date

A template (benchmarks/pages/NAME.md) is the page's prose with its figures left as
placeholders into the result files of benchmarks/results/ (written by benchmarks/record.py),
so that no figure on a page can drift from the run that measured it:

    {{ cgan-defaults:figures.seed0.sevens | .1% }}    a value, in a format spec (Python's)
    {{ cgan-defaults:figures.seed0.steps }}           ints get thousands separators, floats 3 figures
    {{ export:figures.cgan.export_bytes | MB }}       bytes in megabytes (2**20)
    {{ preset cgan lab }}                              the preset that trains the recipe again, checked
    {{ source cgan-defaults }}                         how that result was made: command, commit,
                                                       machine, date, and a link to its JSON

A path walks the JSON by keys (and list indices). A placeholder whose file or key is missing
is an error naming it; tests/test_results_pages.py renders every page and fails when a page
differs from what is committed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "benchmarks" / "pages"
RESULTS = ROOT / "benchmarks" / "results"
PAGES = ROOT / "docs" / "results"

PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}")
HEADER = ("<!-- Written by `python benchmarks/pages.py` from benchmarks/pages/{name}.md and the results in "
          "benchmarks/results/: edit those, not this page. -->\n")


class PageError(Exception):
    """A placeholder that cannot be filled: its template, and what is wrong."""


@cache
def result(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise PageError(f"no result file benchmarks/results/{name}.json")
    return json.loads(path.read_text())


def lookup(name: str, path: str) -> Any:
    value: Any = result(name)
    for key in path.split("."):
        if isinstance(value, list) and key.lstrip("-").isdigit():
            index = int(key)
            if not -len(value) <= index < len(value):
                raise PageError(f"{name}.json: {path}: index {index} out of range")
            value = value[index]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise PageError(f"{name}.json has no {path!r} (stopped at {key!r})")
    return value


def formatted(value: Any, spec: str) -> str:
    if spec == "MB":  # a size in bytes, in megabytes (2**20)
        return f"{value / 2**20:,.2f} MB"
    if spec:
        return format(value, spec)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def source(name: str) -> str:
    """A result's provenance, as one line."""
    r = result(name)
    m = r["machine"]
    cores = f"{m['cores']} core{'' if m['cores'] == 1 else 's'}"
    where = f"{cores} of {m['cpu']}" + (f", {m['gpu']}" if m.get("gpu") else ", no GPU")
    return (f"Measured by `{r['command']}` at commit `{r['commit']}`, {r['date'][:10]}, on {where}, "
            f"torch {m['torch']}: [{name}.json](../../benchmarks/results/{name}.json).")


def preset(model: str, name: str) -> str:
    """The one command that trains the recipe a page measured (``zoo train MODEL --preset NAME``),
    checked: the preset exists and names a result file that exists."""
    from zoo import presets, registry

    try:
        found = presets.get(registry.get(model), name)
    except Exception as error:  # an unknown model or preset: the page is wrong
        raise PageError(f"preset {model} {name}: {error}") from None
    measured = found.measured.get("result", "")
    if not (ROOT / measured).is_file():
        raise PageError(f"preset {model} {name} names {measured!r}, which is not a result file")
    return (f"To train {model}'s recipe again: `{found.command}` ({found.summary}; `zoo info {model}` lists its "
            f"measured time and figures, from [{Path(measured).name}](../../{measured})).")


def fill(template: str, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        try:
            if body.startswith("source "):
                return source(body.removeprefix("source ").strip())
            if body.startswith("preset "):
                model, name = body.removeprefix("preset ").split()
                return preset(model, name)
            ref, _, spec = body.partition("|")
            name, sep, path = ref.strip().partition(":")
            if not sep:
                raise PageError(f"{{{{ {body} }}}} is neither `source NAME` nor `NAME:path`")
            return formatted(lookup(name, path), spec.strip())
        except PageError as error:
            raise PageError(f"{where}: {error}") from None
        except (ValueError, TypeError) as error:
            raise PageError(f"{where}: {{{{ {body} }}}}: {error}") from None

    return PLACEHOLDER.sub(one, template)


def render() -> dict[Path, str]:
    """Every page's text, by the path it is written to."""
    return {PAGES / template.name: HEADER.format(name=template.stem) + fill(template.read_text(), template.name)
            for template in sorted(TEMPLATES.glob("*.md"))}


def stale() -> list[str]:
    """The pages that differ from what their templates and results give (or are missing or extra)."""
    def shown(path: Path) -> str:
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    pages = render()
    out = [shown(p) for p, text in pages.items() if not p.is_file() or p.read_text() != text]
    out += [shown(p) + " (no template)" for p in PAGES.glob("*.md") if p not in pages]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say which pages are out of date")
    args = parser.parse_args()
    try:
        if args.check:
            out = stale()
            if out:
                sys.exit("out of date (run python benchmarks/pages.py): " + ", ".join(out))
            print("every results page is up to date")
            return
        PAGES.mkdir(parents=True, exist_ok=True)
        for path, text in render().items():
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    except PageError as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
