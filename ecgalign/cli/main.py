"""The ``ecgalign`` command. Sub-commands live in one module per group and import heavy parts lazily."""

from __future__ import annotations

import typer

from ecgalign import __version__
from ecgalign.cli._common import set_debug
from ecgalign.cli.cache import app as cache_app
from ecgalign.cli.data import app as data_app
from ecgalign.cli.demo import demo
from ecgalign.cli.digitize import digitize, train_digitizer
from ecgalign.cli.echo import app as echo_app
from ecgalign.cli.eval import app as eval_app
from ecgalign.cli.images import image_table
from ecgalign.cli.render import render
from ecgalign.cli.text import app as text_app
from ecgalign.cli.train import embed, pretrain

app = typer.Typer(
    name="ecgalign",
    help="Multimodal ECG representation learning: data, pretraining, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
app.add_typer(echo_app, name="echo")
app.add_typer(text_app, name="text")
app.add_typer(cache_app, name="cache")
app.command("pretrain")(pretrain)
app.command("embed")(embed)
app.command("render")(render)
app.command("digitize")(digitize)
app.command("train-digitizer")(train_digitizer)
app.command("image-table")(image_table)
app.command("demo")(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecgalign {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback behind an error message."),
) -> None:
    """ecgalign command line."""
    set_debug(debug)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
