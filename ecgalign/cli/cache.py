"""``ecgalign cache ls|clear``: the embedding cache (``--cache-dir`` of the eval commands; default
``$ECGALIGN_CACHE`` or ``~/.cache/ecgalign``). Each entry is ``KEY.parquet`` (the embeddings, keyed by the
model's weights and the data's content) and ``KEY.json`` (skipped records, and which model and data it holds)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ecgalign.cli._common import err, print_json, user_errors
from ecgalign.cli.eval import default_cache_dir
from ecgalign.data.errors import InputError

app = typer.Typer(help="The embedding cache: list entries, clear them.", no_args_is_help=True)

CACHE_DIR = typer.Option(None, "--cache-dir", help="The cache (default: $ECGALIGN_CACHE or ~/.cache/ecgalign).")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '2w' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise InputError(f"--older-than {text!r}: expected a number with an optional unit s, m, h, d or w (e.g. 30d)")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def entries(cache_dir: Path) -> list[dict[str, Any]]:
    """One dict per cached embedding file: key, size (bytes, with its sidecar), age, model, recipe, data, records."""
    out = []
    for parquet in sorted(Path(cache_dir).glob("*.parquet")):
        sidecar = parquet.with_suffix(".json")
        try:
            about = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            about = {}
        stat = parquet.stat()
        size = stat.st_size + (sidecar.stat().st_size if sidecar.is_file() else 0)
        out.append({"key": parquet.stem, "path": str(parquet), "bytes": size, "modified": stat.st_mtime,
                    "age_days": round((time.time() - stat.st_mtime) / 86400, 2),
                    **{k: about.get(k) for k in ("model", "recipe", "data", "records")}})
    return out


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


@app.command("ls")
def ls(cache_dir: Optional[Path] = CACHE_DIR,
       json_out: bool = typer.Option(False, "--json", help="Print the entries as JSON.")) -> None:
    """List cached embeddings: size, age, and the model and data each holds."""
    root = cache_dir or default_cache_dir()
    found = entries(root) if root.is_dir() else []
    if json_out:
        print_json({"cache_dir": str(root), "entries": found, "bytes": sum(e["bytes"] for e in found)})
        return
    for e in found:
        typer.echo(f"{e['key']}  {_size(e['bytes']):>9}  {e['age_days']:6.1f} d  {e['recipe'] or '?'}  "
                   f"model {e['model'] or '? (written before 0.2)'}  data {e['data'] or '?'}  "
                   f"{e['records'] if e['records'] is not None else '?'} records")
    err.print(f"{len(found)} entries, {_size(sum(e['bytes'] for e in found))} in {root}", soft_wrap=True)


@app.command("clear")
def clear(cache_dir: Optional[Path] = CACHE_DIR,
          older_than: Optional[str] = typer.Option(None, "--older-than", help="Only entries not written for this long (30d, 12h, 90m, 2w)."),
          json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON.")) -> None:
    """Remove cached embeddings (all, or those older than --older-than); they are recomputed when needed."""
    root = cache_dir or default_cache_dir()
    with user_errors():
        cutoff = None if older_than is None else time.time() - parse_age(older_than)
        removed = []
        for e in entries(root) if root.is_dir() else []:
            if cutoff is not None and e["modified"] > cutoff:
                continue
            for path in (Path(e["path"]), Path(e["path"]).with_suffix(".json")):
                path.unlink(missing_ok=True)
            removed.append(e)
    freed = sum(e["bytes"] for e in removed)
    if json_out:
        print_json({"cache_dir": str(root), "removed": [e["key"] for e in removed], "bytes": freed})
    else:
        err.print(f"removed {len(removed)} entries ({_size(freed)}) from {root}", soft_wrap=True)
