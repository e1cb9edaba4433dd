"""Small pieces every command uses: JSON output, clean error exits, a progress bar."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ecgalign.data.errors import ECGAlignError

err = Console(stderr=True)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")


_DEBUG = {"on": False}  # set by the root `--debug` flag


def set_debug(on: bool) -> None:
    """``--debug``: print the traceback behind every one-line error."""
    _DEBUG["on"] = bool(on)


def one_line(message: str) -> str:
    """A message as one line: lines joined by '; ', runs of spaces kept as they are."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error (no traceback) and exit."""
    # Text, not markup: a message holding '[...]' (a lead list, a path) is printed as it is, never parsed
    err.print(Text.assemble(("error:", "bold red"), " ", one_line(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# The errors bad input, files or settings raise. ECGAlignError is the project's family; the OS and import errors
# name a file or a missing extra. ValueError and KeyError stay for the modules that still raise them for bad
# settings (train/, eval/, render/): everything else (TypeError, AttributeError, ...) is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ECGAlignError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
    ImportError, ValueError, KeyError,
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors bad input raises into one line naming the problem (``--debug``: with the traceback)."""
    try:
        yield
    except USER_ERRORS as exc:
        if _DEBUG["on"]:
            err.print(traceback.format_exc(), highlight=False, markup=False, soft_wrap=True)
        fail(str(exc.args[0]) if type(exc) is KeyError and exc.args else str(exc))


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields an ``update(done, total)`` callback."""
    if not enabled:
        yield lambda done, total: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:,.0f} rec/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """``--threads``: cap torch's intra-op threads, BLAS/OpenMP pools (threadpoolctl) and the environment that
    loader workers and child processes inherit to ``threads`` (default: the cores this process may use)."""
    import torch
    from threadpoolctl import threadpool_limits

    n = threads or available_cores()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    return n


ALIGN_ROWS_HELP = ("Image models on image files: move each printout's rows to where the renderer draws them "
                   "before encoding (the digitiser finds them; ~0.3 s per 100 dpi page, ~1-2 s at 200 dpi). "
                   "Pages it cannot place are encoded unchanged and counted.")


def set_align_rows(model, align_rows: bool, image_files: bool) -> None:
    """Turn on row alignment for an image model reading image files; refuse it anywhere it would do nothing."""
    if not align_rows:
        return
    if getattr(model, "input_kind", None) != "image":
        raise ValueError("--align-rows applies to image models (ecg-scan); this checkpoint encodes signals")
    if not image_files:
        raise ValueError("--align-rows applies to printout image files (a folder of images or an image table); "
                         "printouts rendered from signals are drawn where the model expects their rows already")
    model.align_rows = True


def row_alignment_line(counts: dict) -> str:
    line = (f"rows aligned on {counts['aligned']} page(s), {counts['unchanged']} left unchanged (pages read in this "
            "run, a file once; embeddings read from the cache are not counted)")
    if counts.get("unchanged_examples"):
        line += ": " + "; ".join(counts["unchanged_examples"][:3])
    return line
