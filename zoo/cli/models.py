"""zoo list, zoo info: what is installed and how to configure it."""

from __future__ import annotations

from zoo.cli.base import START, ModelName, command, console, err_console, handles_errors

# -- zoo list / zoo info ---------------------------------------------------------------------

@command(START, "zoo list", name="list")
@handles_errors
def list_models() -> None:
    """List every model plugin: built-in and installed, working or broken."""
    from rich.table import Table

    from zoo.registry import registry

    reg = registry()
    table = Table(title="zoo models", show_lines=False)
    for column in ("name", "family", "capabilities", "summary", "package", "status"):
        table.add_column(column, overflow="fold")
    for entry in reg.entries():
        conflict = reg.conflict(entry.name)
        if entry.model is not None:
            m = entry.model
            caps = ", ".join(sorted(str(c) for c in m.capabilities)) or "-"
            status = "[red]name conflict[/]" if conflict else "[green]ok[/]"
            table.add_row(m.name, m.family, caps, m.summary, entry.package, status)
        else:
            table.add_row(entry.name, "?", "?", f"[red]{entry.error}[/]", entry.package, "[red]broken[/]")
    console.print(table)
    for name in reg.names():
        if problem := reg.conflict(name):
            err_console.print(f"[yellow]warning:[/] {problem}")


@command(START, "zoo info dcgan", "zoo info cgan     # its presets: zoo train cgan --preset lab")
@handles_errors
def info(model: ModelName) -> None:
    """Show a model: its paper, capabilities, every config key with its default, and its presets
    with the time and figures measured for each."""
    from rich.table import Table

    from zoo import presets
    from zoo.config import describe
    from zoo.registry import registry

    cls = registry().get(model)
    caps = ", ".join(sorted(str(c) for c in cls.capabilities)) or "none"
    console.print(f"[bold]{cls.name}[/] ({cls.family}, plugin version {cls.version})\n{cls.summary}\n"
                  f"paper: {cls.paper or '-'}\ncapabilities: {caps}")
    table = Table(title=f"{cls.name} config (change with --set key=value)")
    for column in ("key", "type", "default", "help"):
        table.add_column(column, overflow="fold")
    for f in describe(cls.Config):
        table.add_row(f.name, f.type, repr(f.default), f.help)
    console.print(table)
    found = presets.presets(cls)
    if not found:
        console.print(f"presets: none ({presets.file_of(cls).name} would hold them: see docs/plugins.md)")
        return
    table = Table(title=f"{cls.name} presets (zoo train {cls.name} --preset NAME; flags and --set take precedence)")
    for column in ("preset", "what it trains", "measured", "on"):
        table.add_column(column, overflow="fold")
    for preset in found.values():
        sets = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in preset.options.items()) + "".join(
            f" --set {k}={v}" for k, v in preset.config.items())
        measured = preset.measured
        figures = ", ".join(f"{k} {_figure(v)}" for k, v in preset.figures().items() if k != "train_seconds")
        took = preset.figures().get("train_seconds")
        cost = f"trains in {took / 60:.1f} min; " if took is not None else ""
        table.add_row(f"[bold]{preset.name}[/]\n{preset.command}", f"{preset.summary}\n[dim]{sets}[/]",
                      f"{cost}{figures}" or "-",
                      f"{measured.get('machine', '?')}\n[dim]{measured.get('result', '')}[/]")
    console.print(table)


def _figure(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
