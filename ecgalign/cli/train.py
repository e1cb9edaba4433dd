"""``ecgalign pretrain`` and ``ecgalign embed``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import (
    ALIGN_ROWS_HELP,
    err,
    fail,
    print_json,
    progress_bar,
    row_alignment_line,
    set_align_rows,
    set_threads,
    user_errors,
)

THREADS_HELP = "CPU threads for torch, BLAS and data loading (default: the cores this process may use)."


def pretrain(
    recipe: str = typer.Option(..., "--recipe", "-r", help="Recipe name (merit, merit-ib, esi, clip, mae) or a YAML file."),
    data: Path = typer.Option(..., "--data", help="A store; records are preprocessed on the fly to the encoder's input when the store holds another (see --strict-input)."),
    unpaired: Optional[Path] = typer.Option(None, "--unpaired", help="A store of signal-only records for the masked-reconstruction term (merit, mae)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="A trained ECG-text run (merit, clip, esi ...) that an ecg-scan recipe learns from."),
    out: Path = typer.Option(Path("runs/pretrain"), "--out", "-o", help="Run folder: config, checkpoints, logs, final model."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from the weights of a trained model or run of the same recipe and architecture (fine-tuning; train.init_from)."),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder", help="Hugging Face name or local folder (default: offline all-MiniLM-L6-v2)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Optimiser steps (overrides optim.max_steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Per-device batch size (data.batch_size)."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override any recipe key, e.g. --set optim.lr=1e-4 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress: a bar on a terminal, a line every --log-seconds otherwise."),
    log_seconds: float = typer.Option(30.0, "--log-seconds", min=0.01, help="Seconds between progress lines when stderr is not a terminal."),
    strict_input: bool = typer.Option(False, "--strict-input", help="Refuse a store that does not already hold the encoder's input instead of preprocessing on the fly."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
    show: bool = typer.Option(False, "--print-recipe", help="Print the resolved recipe and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Pretrain an ECG encoder with a recipe; resumable, mixed precision, multi-GPU (torchrun or --set train.devices=N)."""
    from ecgalign.tasks import load_recipe

    overrides: dict = {}
    if text_encoder is not None:
        overrides.setdefault("model", {})["text_encoder"] = text_encoder
    if max_steps is not None:
        overrides.setdefault("optim", {})["max_steps"] = max_steps
    if batch_size is not None:
        overrides.setdefault("data", {})["batch_size"] = batch_size
    if init_from is not None:
        overrides.setdefault("train", {})["init_from"] = str(init_from)
    with user_errors():
        resolved = load_recipe(recipe, overrides, sets)
    if show:
        import yaml

        typer.echo(yaml.safe_dump(resolved.to_dict(), sort_keys=False))
        return
    from ecgalign.train.engine import NonFiniteLossError, pretrain as run

    try:
        with user_errors():
            n = set_threads(threads)
            result = run(resolved, data, out, unpaired=unpaired, teacher=teacher, resume=resume, overwrite=overwrite,
                         progress=progress and not json_out, strict_input=strict_input,
                         max_workers=None if threads is None else n - 1, log_seconds=log_seconds)
    except NonFiniteLossError as exc:
        fail(str(exc), code=3)
    summary = {"run": str(result.run_dir), "recipe": resolved.name, "steps": result.steps,
               "resumed_from": result.resumed_from, "final_loss": result.final_loss,
               "samples_per_s": round(result.samples_per_s, 1)}
    if json_out:
        print_json(summary)
    else:
        loss = "none (no step ran)" if result.final_loss is None else f"{result.final_loss:.4f}"
        err.print(f"trained {resolved.name} to step {result.steps} (resumed from {result.resumed_from}), "
                  f"final loss {loss}, {result.samples_per_s:,.1f} samples/s -> {result.run_dir}",
                  soft_wrap=True)


def embed(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A run folder or a model folder."),
    data: Optional[Path] = typer.Option(None, "--data", help="A store, or a raw dataset folder (preprocessed on the fly to the model's input)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image models: a folder of printout images (PNG, JPEG, ...) or a CSV with an 'image' column; each is letterboxed to the model's input size."),
    align_rows: bool = typer.Option(False, "--align-rows", help=ALIGN_ROWS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file."),
    batch_size: int = typer.Option(256, min=1, help="Records per forward pass."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Layout of a raw dataset folder (default: detected)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write one row per record (or image): record_id, patient_id, fold, ``features`` (encoder) and ``embedding``
    (joint space)."""
    import ecgalign
    from ecgalign.hub import embed_to_parquet
    from ecgalign.hub.embed import is_image_table

    with user_errors():
        set_threads(threads)
        if (data is None) == (images is None):
            raise ValueError("give exactly one of --data (signals) or --images (printout images)")
        if images is not None and not is_image_table(images):
            raise ValueError(f"{images}: expected a folder of images or a CSV with an 'image' column")
        model = ecgalign.load(checkpoint, device=device)
        set_align_rows(model, align_rows, images is not None)
        with progress_bar("embed", enabled=not json_out) as update:
            summary = embed_to_parquet(model, data or images, out, batch_size=batch_size, fmt=fmt, progress=update)
    if json_out:
        print_json(summary)
    else:
        err.print(f"wrote {summary['records']} embeddings ({summary['skipped']} skipped) to {out}", soft_wrap=True)
        if "row_alignment" in summary:
            err.print(row_alignment_line(summary["row_alignment"]), soft_wrap=True)
