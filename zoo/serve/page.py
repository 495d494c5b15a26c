"""The page itself: Gradio blocks wired to :mod:`zoo.serve.actions`.

A tab per thing a trained model can do; each tab lists the runs whose model can do it
(from the models' capabilities), so a plugin from another package appears here with no
code of its own. A message the user should read (a bad upload, a run deleted while
served) is shown on the page; anything else that goes wrong in one request is logged and
shown as a short message, and the server keeps serving.
"""

from __future__ import annotations

import functools
import math
import random
import traceback
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from zoo.errors import ZooError
from zoo.serve import actions
from zoo.serve.actions import Server
from zoo.serve.catalog import names

CHECKPOINTS = ["latest", "best"]
PRIORS = ["(the model's)", "normal", "uniform", "truncnormal:2", "laplace", "bernoulli"]
FONT = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
"""The page's fonts: the system's (no request leaves the machine for a web font)."""


def showing(server: Server) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator for the page's handlers. Pictures they return are written to the server's
    scratch folder under names of their own, and handed to Gradio as files: Gradio copies a
    file into its cache whole (it writes a picture it is given in place, where two requests
    drawing the same picture at once could read each other's half-written file). Errors
    become a message on the page: zoo's own as they are; anything else is logged with its
    traceback on the server and named briefly. One request's failure never stops the server."""

    def as_files(value: Any) -> Any:
        if isinstance(value, Image.Image):
            path = server.scratch_file(".png")
            value.save(path)
            return str(path)
        if isinstance(value, tuple):
            return tuple(as_files(v) for v in value)
        if isinstance(value, list):
            return [as_files(v) for v in value]
        return value

    def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return as_files(fn(*args, **kwargs))
            except gr.Error:
                raise
            except ZooError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            except Exception as exc:  # noqa: BLE001  (one request's failure is reported, the server goes on)
                traceback.print_exc()
                raise gr.Error(f"this request failed ({type(exc).__name__}: {str(exc)[:200]}); the server goes on",
                               print_exception=False) from None

        return wrapper

    return shown


def _tracker(progress: gr.Progress, what: str) -> Callable[[int, int], None]:
    return lambda done, total: progress((done, total), desc=what)


def build(server: Server, title: str = "zoo") -> gr.Blocks:
    """The page for ``server``'s runs."""
    catalog = server.catalog
    shown = showing(server)

    def run_choices(tab: str | None) -> list[tuple[str, str]]:
        return names(catalog.choices(tab))

    def first(tab: str | None) -> str | None:
        found = catalog.choices(tab)
        return found[-1].name if found else None

    def picker(tab: str, label: str = "run") -> tuple[gr.Dropdown, gr.Radio]:
        with gr.Row():
            run = gr.Dropdown(run_choices(tab), value=first(tab), label=label, allow_custom_value=True,
                              scale=4, elem_id=f"{tab}-run")
            which = gr.Radio(CHECKPOINTS, value="latest", label="checkpoint", scale=1, elem_id=f"{tab}-checkpoint")
        return run, which

    def refreshed(tab: str | None) -> Callable[[Any], Any]:
        def update(current: Any) -> Any:
            choices = run_choices(tab)
            keep = current if any(value == current for _, value in choices) else (choices[-1][1] if choices else None)
            return gr.update(choices=choices, value=keep)
        return update

    with gr.Blocks(title=title, delete_cache=(900, 3600)) as page:
        gr.Markdown(f"## {title}\nEvery run in `{catalog.root}`: choose one on each tab.")
        with gr.Tabs():
            # -- runs ----------------------------------------------------------------------------------
            with gr.Tab("Runs", id="runs"):
                table = gr.Dataframe(value=actions.runs_rows(server), headers=actions.RUN_COLUMNS,
                                     interactive=False, elem_id="runs-table", wrap=True)
                with gr.Row():
                    run_picked = gr.Dropdown(run_choices(None), value=first(None), label="run",
                                             allow_custom_value=True, scale=4, elem_id="runs-run")
                    reload = gr.Button("Read the folder again", scale=1)
                about = gr.Markdown(elem_id="runs-about")
                with gr.Row():
                    losses = gr.Image(label="loss curves", elem_id="runs-losses")
                    preview = gr.Image(label="latest preview", elem_id="runs-preview")
                    progress_gif = gr.Image(label="progress", type="filepath", elem_id="runs-progress")
                seen = gr.State(0.0)
                timer = gr.Timer(5.0)

                @shown
                def view(name: Any) -> tuple[Any, ...]:
                    if not name:
                        return None, None, None, "no run with a checkpoint here yet", 0.0
                    seen_now = actions.run_view(server, name)
                    return (seen_now.losses, seen_now.preview, str(seen_now.progress) if seen_now.progress else None,
                            seen_now.text, seen_now.checkpoint_mtime)

                def tick(name: Any, last: float) -> tuple[Any, ...]:
                    """A new checkpoint of the run shown: its pictures again; else nothing changes."""
                    try:
                        newer = actions.run_view(server, name) if name else None
                    except ZooError:
                        newer = None
                    if newer is None or newer.checkpoint_mtime == last:
                        return (gr.update(),) * 5
                    return view(name)

                view_outputs = [losses, preview, progress_gif, about, seen]
                run_picked.change(view, run_picked, view_outputs, api_name="run")
                page.load(view, run_picked, view_outputs)
                timer.tick(tick, [run_picked, seen], view_outputs, show_progress="hidden", api_visibility="private")
                reload.click(lambda: actions.runs_rows(server), None, table).then(refreshed(None), run_picked,
                                                                                    run_picked)

            # -- sample --------------------------------------------------------------------------------
            with gr.Tab("Sample", id="sample"):
                run, which = picker("sample")
                with gr.Row():
                    count = gr.Slider(1, 64, value=16, step=1, label="images", elem_id="sample-n")
                    seed = gr.Number(0, precision=0, label="seed", minimum=0, elem_id="sample-seed")
                    another = gr.Button("another", scale=0, elem_id="sample-another")
                with gr.Row():
                    klass = gr.Dropdown([], label="class", allow_custom_value=True, visible=False,
                                        elem_id="sample-class")
                    text = gr.Textbox(label="text (a prompt per line)", visible=False, elem_id="sample-text")
                    prior = gr.Dropdown(PRIORS, value=PRIORS[0], label="prior", elem_id="sample-prior")
                    truncation = gr.Slider(0, 3, value=0, step=0.05, label="truncation (0: none)",
                                           elem_id="sample-truncation")
                draw = gr.Button("Draw", variant="primary", elem_id="sample-draw")
                caption = gr.Markdown(elem_id="sample-caption")
                grid = gr.Image(label="grid", type="pil", format="png", elem_id="sample-grid")
                files = gr.File(label="each image, as PNG files (a zip)", elem_id="sample-files")

                @shown
                def controls(name: Any, which_: str) -> tuple[Any, ...]:
                    if not name:
                        return gr.update(visible=False), gr.update(visible=False)
                    found = actions.facts(server, name, which_, "sample")
                    classes = found.class_names
                    return (gr.update(choices=classes, value=classes[0] if classes else None, visible=bool(classes)),
                            gr.update(visible=found.text))

                @shown
                def sampled(name: Any, which_: str, n: float, seed_: float, class_: Any, text_: str, prior_: str,
                            truncation_: float) -> tuple[Any, ...]:
                    made = actions.sample(server, name, which_, n=int(n), seed=_seed(seed_), class_=class_ or None,
                                          noise=None if prior_ == PRIORS[0] else prior_,
                                          truncation=truncation_ or None, text=text_ or None)
                    return made.grid, str(made.archive), made.caption

                inputs = [run, which, count, seed, klass, text, prior, truncation]
                run.change(controls, [run, which], [klass, text], api_name="sample_controls")
                page.load(controls, [run, which], [klass, text])
                draw.click(sampled, inputs, [grid, files, caption], api_name="sample")
                another.click(lambda: random.randrange(2**31), None, seed).then(sampled, inputs,
                                                                                 [grid, files, caption])

            # -- explore and interpolate -----------------------------------------------------------------
            with gr.Tab("Explore", id="explore"):
                run_e, which_e = picker("explore")
                with gr.Row():
                    seed_e = gr.Number(0, precision=0, label="base seed", minimum=0, elem_id="explore-seed")
                    class_e = gr.Dropdown([], label="class", allow_custom_value=True, visible=False,
                                          elem_id="explore-class")
                    base = gr.Radio(["seed", "inverted image"], value="seed", label="base latent",
                                    elem_id="explore-base")
                dims, sliders = [], []
                with gr.Row():
                    for i in range(actions.SLIDERS):
                        with gr.Column(min_width=140):
                            dims.append(gr.Number(i, precision=0, minimum=0, label=f"coordinate {i + 1}",
                                                  elem_id=f"explore-dim{i}"))
                            sliders.append(gr.Slider(-actions.SLIDER_RANGE, actions.SLIDER_RANGE, value=0, step=0.05,
                                                     label="value", elem_id=f"explore-slider{i}"))
                explored = gr.Image(label="the image", type="pil", format="png", elem_id="explore-image")
                inverted = gr.State(None)  # the latent fitted on the Invert tab

                @shown
                def explore_controls(name: Any, which_: str, seed_: float, *dims_: float) -> tuple[Any, ...]:
                    if not name:
                        return (gr.update(visible=False), *(gr.update() for _ in sliders))
                    found = actions.facts(server, name, which_, "explore")
                    classes = found.class_names
                    if found.text:
                        values = [0.0] * len(sliders)
                    else:
                        values = actions.base_values(server, name, which_, _seed(seed_), [_whole(d) for d in dims_])
                    return (gr.update(choices=classes, value=classes[0] if classes else None, visible=bool(classes)),
                            *(gr.update(value=round(max(-actions.SLIDER_RANGE, min(actions.SLIDER_RANGE, v)), 2))
                              for v in values))

                @shown
                def moved(name: Any, which_: str, seed_: float, class_: Any, base_: str, fitted: Any,
                          *dims_and_values: float) -> Any:
                    k = len(sliders)
                    latent = None
                    if base_ == "inverted image":
                        if not fitted or fitted.get("run") != name:
                            raise gr.Error("invert an image of this run on the Invert tab first", print_exception=False)
                        latent = fitted["z"]
                    return actions.explore(server, name, which_, seed=_seed(seed_),
                                           dims=[_whole(d) for d in dims_and_values[:k]],
                                           values=[_number(v) for v in dims_and_values[k:]], class_=class_ or None,
                                           latent=latent)

                explore_inputs = [run_e, which_e, seed_e, class_e, base, inverted, *dims, *sliders]
                for trigger in (run_e.change, seed_e.change, *(d.change for d in dims)):
                    trigger(explore_controls, [run_e, which_e, seed_e, *dims], [class_e, *sliders]).then(
                        moved, explore_inputs, explored, show_progress="hidden")
                page.load(explore_controls, [run_e, which_e, seed_e, *dims], [class_e, *sliders])
                for slider in sliders:
                    slider.change(moved, explore_inputs, explored, show_progress="hidden", trigger_mode="always_last",
                                  api_name="explore")
                for control in (class_e.change, base.change):
                    control(moved, explore_inputs, explored, show_progress="hidden")

                gr.Markdown("### Interpolate")
                with gr.Row():
                    from_seed = gr.Number(0, precision=0, minimum=0, label="from seed", elem_id="walk-from-seed")
                    to_seed = gr.Number(1, precision=0, minimum=0, label="to seed", elem_id="walk-to-seed")
                    steps_w = gr.Slider(2, actions.MOST_WALK_STEPS, value=8, step=1, label="steps",
                                        elem_id="walk-steps")
                with gr.Row():
                    from_class = gr.Textbox(label="from class (class-conditional models)", elem_id="walk-from-class")
                    to_class = gr.Textbox(label="to class", elem_id="walk-to-class")
                with gr.Row():
                    from_text = gr.Textbox(label="from prompt (text models)", elem_id="walk-from-text")
                    to_text = gr.Textbox(label="to prompt", elem_id="walk-to-text")
                walk_button = gr.Button("Walk", variant="primary", elem_id="walk-go")
                walk_caption = gr.Markdown(elem_id="walk-caption")
                with gr.Row():
                    strip = gr.Image(label="strip", type="pil", format="png", elem_id="walk-strip")
                    animation = gr.Image(label="animation", type="filepath", elem_id="walk-gif")

                @shown
                def walked(name: Any, which_: str, a: float, b: float, steps_: float, a_class: str, b_class: str,
                           a_text: str, b_text: str) -> tuple[Any, ...]:
                    made = actions.interpolate(server, name, which_, from_seed=_seed(a), to_seed=_seed(b),
                                               steps=int(steps_), from_class=a_class or None,
                                               to_class=b_class or None, from_text=a_text, to_text=b_text)
                    return made.strip, str(made.animation), made.caption

                walk_button.click(walked, [run_e, which_e, from_seed, to_seed, steps_w, from_class, to_class,
                                           from_text, to_text], [strip, animation, walk_caption],
                                  api_name="interpolate")

            # -- invert --------------------------------------------------------------------------------
            with gr.Tab("Invert", id="invert"):
                run_i, which_i = picker("invert")
                with gr.Row():
                    upload_i = gr.File(label="an image", file_types=["image"], elem_id="invert-upload")
                    steps_i = gr.Slider(10, actions.MOST_INVERT_STEPS, value=200, step=10, label="steps",
                                        elem_id="invert-steps")
                    restarts_i = gr.Slider(1, 16, value=4, step=1, label="random starts", elem_id="invert-restarts")
                    class_i = gr.Textbox(label="class (class-conditional models)", elem_id="invert-class")
                invert_button = gr.Button("Invert", variant="primary", elem_id="invert-go")
                invert_caption = gr.Markdown(elem_id="invert-caption")
                with gr.Row():
                    target_i = gr.Image(label="the image", type="pil", format="png", elem_id="invert-target")
                    fitted_i = gr.Image(label="the model's nearest", type="pil", format="png", elem_id="invert-fitted")

                @shown
                def inverted_image(name: Any, which_: str, upload: Any, steps_: float, restarts_: float, class_: str,
                                   progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio's way)
                    made = actions.invert(server, name, which_, image=upload, steps=int(steps_),
                                          restarts=int(restarts_), class_=class_ or None,
                                          progress=_tracker(progress, "fitting the latent"))
                    caption_ = made.caption + " (on the Explore tab, choose the base latent \"inverted image\")"
                    return made.target, made.fitted, caption_, {"run": name, "z": made.latent}

                invert_button.click(inverted_image, [run_i, which_i, upload_i, steps_i, restarts_i, class_i],
                                    [target_i, fitted_i, invert_caption, inverted], api_name="invert")

            # -- translate -----------------------------------------------------------------------------
            with gr.Tab("Translate", id="translate"):
                run_t, which_t = picker("translate")
                direction = gr.Radio(["AtoB"], value="AtoB", label="direction", elem_id="translate-direction")
                with gr.Row():
                    pad = gr.Sketchpad(label="draw (black on white): the brush, then strokes", type="filepath",
                                       format="png", canvas_size=(256, 256), brush=pen(), elem_id="translate-pad")
                    upload_t = gr.File(label="or upload an image", file_types=["image"], elem_id="translate-upload")
                with gr.Row():
                    from_pad = gr.Button("Translate the drawing", variant="primary", elem_id="translate-drawing")
                    from_upload = gr.Button("Translate the upload", elem_id="translate-go")
                translate_caption = gr.Markdown(elem_id="translate-caption")
                with gr.Row():
                    before_t = gr.Image(label="input", type="pil", format="png", elem_id="translate-input")
                    after_t = gr.Image(label="output", type="pil", format="png", elem_id="translate-output")

                @shown
                def directions(name: Any, which_: str) -> Any:
                    if not name:
                        return gr.update()
                    ways = actions.facts(server, name, which_, "translate").directions
                    return gr.update(choices=ways, value=ways[0] if ways else None)

                @shown
                def translated(name: Any, which_: str, way: str, image: Any) -> tuple[Any, ...]:
                    made = actions.translate(server, name, which_, image=image, direction=way)
                    return made.before, made.after, made.caption

                run_t.change(directions, [run_t, which_t], direction)
                page.load(directions, [run_t, which_t], direction)
                from_pad.click(translated, [run_t, which_t, direction, pad], [before_t, after_t, translate_caption],
                               api_name="translate_drawing")
                from_upload.click(translated, [run_t, which_t, direction, upload_t],
                                  [before_t, after_t, translate_caption], api_name="translate")

            # -- upscale -------------------------------------------------------------------------------
            with gr.Tab("Upscale", id="upscale"):
                run_u, which_u = picker("upscale")
                upload_u = gr.File(label="a photo", file_types=["image"], elem_id="upscale-upload")
                upscale_button = gr.Button("Upscale", variant="primary", elem_id="upscale-go")
                upscale_caption = gr.Markdown(elem_id="upscale-caption")
                compared_u = gr.ImageSlider(label="bicubic | the model", type="pil", elem_id="upscale-slider")
                download_u = gr.File(label="the upscaled image", elem_id="upscale-file")

                @shown
                def upscaled(name: Any, which_: str, upload: Any,
                             progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio's way)
                    made = actions.upscale(server, name, which_, image=upload,
                                           progress=_tracker(progress, "upscaling, tile by tile"))
                    return (made.before, made.after), str(made.file), made.caption

                upscale_button.click(upscaled, [run_u, which_u, upload_u], [compared_u, download_u, upscale_caption],
                                     api_name="upscale")

            # -- reconstruct ---------------------------------------------------------------------------
            with gr.Tab("Reconstruct", id="reconstruct"):
                run_r, which_r = picker("reconstruct")
                class_r = gr.Textbox(label="class (class-conditional encoders)", elem_id="reconstruct-class")
                with gr.Row():
                    pad_r = gr.Sketchpad(label="draw: the brush, then strokes", type="filepath", format="png",
                                         canvas_size=(256, 256), brush=pen(8), elem_id="reconstruct-pad")
                    upload_r = gr.File(label="or upload an image", file_types=["image"], elem_id="reconstruct-upload")
                with gr.Row():
                    from_pad_r = gr.Button("Reconstruct the drawing", variant="primary",
                                           elem_id="reconstruct-drawing")
                    from_upload_r = gr.Button("Reconstruct the upload", elem_id="reconstruct-go")
                reconstruct_caption = gr.Markdown(elem_id="reconstruct-caption")
                with gr.Row():
                    before_r = gr.Image(label="input", type="pil", format="png", elem_id="reconstruct-input")
                    after_r = gr.Image(label="reconstruction", type="pil", format="png",
                                       elem_id="reconstruct-output")

                @shown
                def reconstructed(name: Any, which_: str, class_: str, image: Any) -> tuple[Any, ...]:
                    made = actions.reconstruct(server, name, which_, image=image, class_=class_ or None)
                    return made.before, made.after, made.caption

                from_pad_r.click(reconstructed, [run_r, which_r, class_r, pad_r],
                                 [before_r, after_r, reconstruct_caption], api_name="reconstruct_drawing")
                from_upload_r.click(reconstructed, [run_r, which_r, class_r, upload_r],
                                    [before_r, after_r, reconstruct_caption], api_name="reconstruct")

            # -- measure -------------------------------------------------------------------------------
            with gr.Tab("Measure", id="measure"):
                run_m = gr.Dropdown(run_choices(None), value=first(None), label="run", allow_custom_value=True,
                                    elem_id="measure-run")
                protocol = gr.Markdown(elem_id="measure-protocol")
                figures_m = gr.Dataframe(headers=["figure", "value"], interactive=False, elem_id="measure-figures")
                report_button = gr.Button("Show the run's report", elem_id="measure-report-go")
                report = gr.HTML(elem_id="measure-report")
                gr.Markdown("### Runs side by side")
                several = gr.Dropdown(run_choices(None), multiselect=True, label="runs", allow_custom_value=True,
                                      elem_id="compare-runs")
                warning = gr.Markdown(elem_id="compare-warning")
                side_by_side = gr.Dataframe(interactive=False, elem_id="compare-table")

                @shown
                def measure(name: Any) -> tuple[Any, ...]:
                    if not name:
                        return [], "no run chosen"
                    rows, said = actions.measured(server, name)
                    return rows, said

                @shown
                def reported(name: Any) -> str:
                    import html

                    return (f'<iframe title="report" style="width:100%;height:900px;border:0" '
                            f'sandbox srcdoc="{html.escape(actions.report_html(server, name), quote=True)}"></iframe>')

                @shown
                def compare(chosen: Any) -> tuple[Any, ...]:
                    if not chosen:
                        return gr.update(value=[]), ""
                    headers, rows, said = actions.compared(server, list(chosen))
                    return gr.update(value=rows, headers=headers), said

                run_m.change(measure, run_m, [figures_m, protocol], api_name="measure")
                page.load(measure, run_m, [figures_m, protocol])
                report_button.click(reported, run_m, report, api_name="report")
                several.change(compare, several, [side_by_side, warning], api_name="compare")

            # Every run list is read again when a tab is opened, so new runs appear.
            for tab_name, dropdown in (("sample", run), ("explore", run_e), ("invert", run_i), ("translate", run_t),
                                       ("upscale", run_u), ("reconstruct", run_r)):
                page.load(refreshed(tab_name), dropdown, dropdown)
    return page


def pen(size: int = 3) -> Any:
    """The drawing pads' brush: black, ``size`` px across (edges are thin lines)."""
    return gr.Brush(colors=["#000000"], color_mode="fixed", default_size=size)


def theme() -> Any:
    """Gradio's default look in the system's fonts."""
    return gr.themes.Default(font=FONT, font_mono=["ui-monospace", "monospace"])


def _whole(value: Any, what: str = "a latent coordinate") -> int:
    """A whole number from a number box, or a message saying what it must be."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not float(value).is_integer():
        raise gr.Error(f"{what} is a whole number, not {value!r}", print_exception=False)
    return int(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise gr.Error(f"a slider's value is a finite number, not {value!r}", print_exception=False)
    return float(value)


def _seed(value: Any) -> int:
    """A seed from a number box: a whole number (the pipelines check its range)."""
    if value is None:
        return 0
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not float(value).is_integer():
        raise gr.Error(f"a seed is a whole number from 0 to 4294967295, not {value!r}", print_exception=False)
    return int(value)
