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


@command(START, "zoo info dcgan")
@handles_errors
def info(model: ModelName) -> None:
    """Show a model: its paper, capabilities and every config key with its default."""
    from rich.table import Table

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
