"""zoo report: one self-contained HTML page about a run, to keep or send.

The page holds what the run's files say: what was trained on what and how (run.json and
the checkpoint's header), the data's exploration pictures (from its prepared folder), the
loss curves, the progress GIF and the latest preview, ``zoo eval``'s figures with their
protocol and pictures, the in-training evaluation curve, and the warnings training raised.
Every picture is embedded as a data URI and the stylesheet is inline: the file opens
anywhere, offline, and fetches nothing. A part the run does not have is left out with a
short note saying why. The run's files are read by :mod:`zoo.records.run_info`, the in-training
chart is drawn by :func:`zoo.display.figures.eval_curve`, and the page's parts (embedded pictures,
tables, the stylesheet) are :mod:`zoo.pipelines.page`'s: this module says what the page holds.
"""

from __future__ import annotations

import html
import io
import json
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

import zoo
from zoo.data.images import UNREADABLE
from zoo.display.console import make_console
from zoo.display.figures import eval_curve, number
from zoo.errors import UsageError, ZooError
from zoo.pipelines import page
from zoo.pipelines.runs_table import best_text, duration, steps_text
from zoo.records import files
from zoo.records.run_info import (
    EVAL_FILE,
    EVAL_KEYS,
    EVAL_METRICS,
    METRICS_FILE,
    NOT_FIGURES,
    RunSummary,
    is_evaluation,
    read_metrics,
    read_run,
    train_state,
)
from zoo.records.runs import read_run_info, resolve_run

if TYPE_CHECKING:
    from zoo.data.memory import PreparedData

REPORT_FILE = "report.html"
GENERATOR = "zoo report"
"""Written into the page's <meta name="generator">: a file that has it is one of ours, and
may be written over without --force."""
DATA_PICTURES = {"samples.png": "samples, a row per class where labelled", "pairs.png": "pairs: A over B",
                 "stats.png": "per-pixel statistics", "histogram.png": "pixel histogram per channel",
                 "class_counts.png": "images per class"}
EVAL_PICTURES = {"samples.png": "samples", "nearest.png": "samples and their nearest training images",
                 "classes.png": "class accuracy of the samples"}


def report(target: str, out: Path | None = None, force: bool = False, console: Console | None = None) -> Path:
    """Write the run's report (default ``RUN/report.html``); returns its path. A file that is
    not an earlier report is written over only with ``force``."""
    console = console or make_console()
    run_dir = resolve_run(target)
    out = out if out is not None else run_dir / REPORT_FILE
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the file name of the report (report.html)")
    if out.exists() and not force and not is_report(out):
        raise UsageError(f"{out} exists and is not a zoo report; pass --force to write over it, "
                         "or --out another file")
    text = render(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(out, text, "report")
    console.print(escape(f"report ({len(text) / 1e6:.1f} MB) -> {out}"), highlight=False)
    return out


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page this module wrote (its generator tag near the top)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}">' in head


def render(run_dir: Path) -> str:
    """The whole page, as text."""
    run = read_run(run_dir) or RunSummary(run_dir, "unknown")
    info = read_run_info(run_dir)
    train = train_state(run_dir) or {}
    records = read_metrics(run_dir / METRICS_FILE)
    title = f"{run.model or 'run'} on {run.data or 'unknown data'}"
    sections = [
        ("run", "The run", lambda: _run_section(run, info, train)),
        ("data", "The data", lambda: _data_section(info, train)),
        ("training", "Training", lambda: _training_section(run_dir)),
        ("in-training", "Evaluation during training", lambda: _in_training_section(records, run.best)),
        ("eval", "Evaluation", lambda: _eval_section(run_dir, run.evaluation)),
        ("warnings", "Warnings", lambda: _warnings_section(info)),
    ]
    nav = " · ".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{html.escape(name)}</h2>\n{_safely(draw)}</section>'
                     for key, name, draw in sections)
    status = f'<span class="status {_css_class(run.status)}">{html.escape(run.status)}</span>'
    warned = len(_warnings(info))
    if warned:
        status += f' · <a class="warned" href="#warnings">{warned} warning{"s" if warned != 1 else ""}</a>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="{GENERATOR}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} | {html.escape(run_dir.name)}</title>
<style>{page.STYLE}</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(run_dir.name)} · {status} · {html.escape(steps_text(run) or "no")} steps ·
created {html.escape((run.created or "?").replace("T", " "))}</p>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>Written by zoo {html.escape(zoo.__version__)} from {html.escape(str(run_dir.resolve()))}.</footer>
</body>
</html>
"""


def _safely(draw: Callable[[], str]) -> str:
    """A section, or a note where the run's files hold something it cannot read (a run.json
    edited by hand, a half-written picture): one bad part does not lose the page."""
    try:
        return draw()
    except (AttributeError, KeyError, TypeError, ValueError, *UNREADABLE) as exc:
        return page.note(f"This part could not be drawn: {type(exc).__name__}: {exc}")


# -- sections -----------------------------------------------------------------------------------

def _run_section(run: RunSummary, info: dict[str, Any], train: dict[str, Any]) -> str:
    if not info:
        return page.note("run.json is missing or unreadable; the run cannot say how it was trained.")
    total = info.get("total_images") and f"{info['total_images']:,} images"
    facts = [
        ("model", f"{info.get('model', '?')}" + (f" (plugin version {info['plugin_version']})"
                                                  if "plugin_version" in info else "")),
        ("data", info.get("data")),
        ("command", info.get("command") or train_command(info, train)),
        ("steps", f"{steps_text(run)}{f' ({total})' if total else ''}"),
        ("images seen", f"{run.images:,}" if run.images is not None else None),
        ("status", run.status),
        ("created", (run.created or "").replace("T", " ")),
        ("trained for", duration(run.seconds) or None),
        ("seed", info.get("seed")),
        ("device", info.get("device")),
        ("precision", info.get("precision")),
        ("gradient clipping", (info["clip_grad"] or "off") if "clip_grad" in info else None),
        ("evaluated every", f"{info['eval_every']:,} steps" if info.get("eval_every") else None),
        ("warm start from", info.get("init_from")),
        ("W&B", info.get("wandb")),
        ("zoo version", train.get("zoo_version")),
    ]
    config = _config(info)
    config_grid = (page.grid((k, json.dumps(v)) for k, v in config.items()) if config
                   else page.note("run.json holds no config."))
    return page.facts(facts) + "<h3>Config</h3>\n" + config_grid


def train_command(info: dict[str, Any], train: dict[str, Any]) -> str:
    """The ``zoo train`` command that makes this run again, from what the run recorded."""
    parts = ["zoo", "train", str(info.get("model", "MODEL"))]
    record = train.get("data") or {}
    parts += ["--data", str(record.get("source") or info.get("data") or "DATA")]
    for flag in ("size", "channels", "classes", "subset", "direction"):
        if record.get(flag) is not None:
            parts += [f"--{flag}", str(record[flag])]
    if info.get("total_images"):
        parts += ["--kimg", f"{info['total_images'] / 1000:g}"]
    elif info.get("total_steps"):
        parts += ["--steps", str(info["total_steps"])]
    if train.get("minutes"):
        parts += ["--minutes", f"{train['minutes']:g}"]
    if info.get("seed") is not None:
        parts += ["--seed", str(info["seed"])]
    if info.get("precision") not in (None, "fp32"):
        parts += ["--precision", str(info["precision"])]
    if info.get("clip_grad"):
        parts += ["--clip-grad", f"{info['clip_grad']:g}"]
    if info.get("eval_every"):
        parts += ["--eval-every", str(info["eval_every"])]
    if info.get("init_from"):  # a run started from another's weights (srgan from srresnet, stackgan's stage II)
        parts += ["--init-from", str(info["init_from"])]
    for key, value in changed_config(str(info.get("model")), _config(info)).items():
        parts += ["--set", f"{key}={_config_text(value)}"]
    return " ".join(shlex.quote(p) for p in parts)


def _config(info: dict[str, Any]) -> dict[str, Any]:
    config = info.get("config")
    return config if isinstance(config, dict) else {}


def changed_config(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config keys that differ from the plugin's defaults (all of them, where the plugin
    is not installed here)."""
    from zoo import registry
    from zoo.config import to_dict

    try:
        defaults = to_dict(registry.get(model).Config())
    except (ZooError, TypeError):
        return {k: v for k, v in config.items() if v is not None}
    return {k: v for k, v in config.items() if k not in defaults or defaults[k] != v}


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _data_section(info: dict[str, Any], train: dict[str, Any]) -> str:
    from zoo.pipelines.prep_summary import describe

    record = dict(train.get("data") or {})
    record.setdefault("source", info.get("data"))
    prepared, why = _prepared(record)
    if prepared is None:
        return page.note(f"No data pictures: {why}.")
    pictures = page.pictures_in(prepared.path, DATA_PICTURES)
    return page.facts(describe(prepared).items()) + "\n" + (
        page.gallery(pictures) if pictures else page.note(f"{prepared.path} holds no pictures."))


def _prepared(record: dict[str, Any]) -> tuple[PreparedData | None, str]:
    """The prepared data a run trained on (its record as the checkpoint keeps it), or None and
    why not. Prepares it again if its files are here but the cache is gone; never downloads."""
    from zoo.data import sources
    from zoo.data.sources import named
    from zoo.pipelines.prep import prepare

    data = record.get("source")
    if not data:
        return None, "the run does not say what it trained on"
    data_dir = Path(record["data_dir"]) if record.get("data_dir") else None
    try:
        quiet = Console(file=io.StringIO())
        made_of = sources.find(data).made_of(data)
        env_dir = sources.Reading(None, None, data_dir, quiet).env_dir
        if made_of and named.fingerprint(made_of, data_dir, env_dir) is None:
            return None, f"{made_of}'s files are not on this machine (zoo prep {data} finds or downloads them)"
        return prepare(data, size=record.get("size"), channels=record.get("channels"), data_dir=data_dir,
                       classes=record.get("classes"), subset=record.get("subset"),
                       direction=record.get("direction"), console=quiet), ""
    except ZooError as exc:
        return None, f"{data} could not be prepared here ({exc})"


def _training_section(run_dir: Path) -> str:
    previews = sorted((run_dir / "progress").glob("step-*.png"))
    latest = previews[-1] if previews else run_dir / "progress" / "latest.png"
    shown = [(run_dir / "losses.png", "loss curves", "losses.png: written when training stops"),
             (run_dir / "progress.gif", "the preview grid over training",
              "progress.gif: written when training stops, from the previews"),
             (latest, f"the latest preview ({_step_of(latest)})" if previews else "the latest preview",
              "preview grid: the run has drawn none yet")]
    found = [(path, caption) for path, caption, _ in shown if path.is_file()]
    missing = [why for path, _, why in shown if not path.is_file()]
    return ((page.gallery(found) if found else "")
            + "".join(page.note(f"No {why}.") for why in missing))


def _step_of(path: Path) -> str:
    digits = path.stem.split("-")[-1]
    return f"step {int(digits):,}" if digits.isdigit() else path.name


def _in_training_section(records: Sequence[dict], best: dict[str, Any]) -> str:
    evals = [r for r in records if is_evaluation(r)]
    if not evals:
        return page.note("None: the run was trained without --eval-every.")
    keys = [k for k in EVAL_KEYS if any(k in r for r in evals)]
    chart = eval_curve(evals, keys, best)
    protocol = best.get("protocol")
    lines = [f"{len(evals)} evaluation{'s' if len(evals) != 1 else ''} of fixed samples"]
    if protocol:
        lines.append(f"protocol {protocol}")
    if best:
        lines.append(f"best {best_text(best)} (kept as best.safetensors)")
    return f'<p>{html.escape("; ".join(lines))}.</p>\n' + page.figure(page.data_uri(chart, "image/png"),
                                                                      "in-training figures against step")


def _eval_section(run_dir: Path, evaluation: dict[str, Any]) -> str:
    pictures = page.pictures_in(run_dir / "eval", EVAL_PICTURES)
    if not evaluation:
        text = page.note(f"Not evaluated yet: zoo eval {run_dir} writes {EVAL_FILE}."
                         if not (run_dir / EVAL_FILE).exists() else f"{EVAL_FILE} is unreadable.")
        return text + (page.gallery(pictures) if pictures else "")
    parts = []
    protocol = evaluation.get("protocol")
    where = evaluation.get("checkpoint") or {}
    said = [f"protocol <code>{html.escape(str(protocol))}</code>" if protocol else "protocol not recorded"]
    if where.get("step") is not None:
        said.append(f"{html.escape(str(where.get('which', '')))} checkpoint, step {where['step']:,}")
    if evaluation.get("evaluated"):
        said.append(f"evaluated {html.escape(str(evaluation['evaluated']).replace('T', ' '))}")
    if evaluation.get("seconds") is not None:
        said.append(f"in {duration(evaluation['seconds'])}")
    parts.append(f'<p class="protocol">{" · ".join(said)}</p>')
    rows = []
    for key in [k for k in EVAL_METRICS if k in evaluation] + sorted(
            k for k, v in evaluation.items() if k not in EVAL_METRICS and k not in NOT_FIGURES
            and isinstance(v, (int, float)) and not isinstance(v, bool)):
        value = evaluation[key]
        if not isinstance(value, (int, float)):
            continue
        shown = number(float(value))
        if key == "kid" and isinstance(evaluation.get("kid_std"), (int, float)):
            shown += f" ± {evaluation['kid_std']:.2g}"
        rows.append((key, shown, EVAL_METRICS.get(key, (None, ""))[1]))
    if evaluation.get("fid_skipped"):
        rows.append(("fid", "not measured", str(evaluation["fid_skipped"])))
    parts.append(page.table(["figure", "value", "meaning"], rows, "figures") if rows
                 else page.note("eval.json holds no figures."))
    per_class = evaluation.get("class_accuracy_per_class") or {}
    if per_class:
        shares = [(name, f"{v:.1%}" if isinstance(v, (int, float)) else "not measured")
                  for name, v in per_class.items()]
        parts.append("<h3>Class accuracy per class</h3>\n" + page.grid(shares, narrow=True))
    detail = evaluation.get("protocol_detail") or {}
    if detail:
        parts.append("<h3>Protocol</h3>\n" + page.facts([(k, v if not isinstance(v, dict) else json.dumps(v))
                                                         for k, v in detail.items() if k != "name"]))
    if pictures:
        parts.append("<h3>Pictures</h3>\n" + page.gallery(pictures))
    else:
        parts.append(page.note("No pictures in eval/."))
    return "\n".join(parts)


def _warnings_section(info: dict[str, Any]) -> str:
    warnings = _warnings(info)
    if not warnings:
        return '<p class="ok">None: training raised no warnings.</p>' if info else page.note("No run.json to read.")
    rows = [(f"{w['step']:,}" if isinstance(w.get("step"), int) else "", w.get("kind", ""), w.get("message", ""))
            for w in warnings]
    return page.table(["step", "kind", "message"], rows, "warnings")


def _warnings(info: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's warnings: [{"step", "kind", "message"}, ...]."""
    warnings = info.get("warnings")
    return [w for w in warnings if isinstance(w, dict)] if isinstance(warnings, list) else []


def _css_class(status: str) -> str:
    return {"finished": "good", "running": "live", "stopped": "bad", "unreadable": "bad"}.get(
        status, "bad" if status.startswith("failed") else "warn")
