"""``ecgalign demo`` (the main job of ``make demo``): synthesize data, pretrain a small MERIT model on the CPU,
evaluate every protocol on held-out synthetic records and on PTB-XL when a folder is at hand, and write one
report. Sized to finish in a few minutes on 2 cores; every number in it comes from this run. The trained model
is also written at OUT itself (model.json + model.safetensors), so ``--checkpoint OUT`` works; the demo ends by
printing that path and the commands to run on it next."""

from __future__ import annotations

import shlex
import shutil
import time
from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, print_json, set_threads, user_errors

DEMO_MODEL = {"encoder_kwargs": {"embed_dim": 64, "depth": 2, "num_heads": 2},
              "decoder": {"decoder_dim": 32, "depth": 1, "num_heads": 2}}


def publish_model(run: Path, out: Path) -> None:
    """Copy the final model (model.json + model.safetensors) of ``run`` into ``out`` (atomically, each file), so
    that ``--checkpoint OUT`` loads it."""
    from ecgalign.hub.io import CARD, WEIGHTS  # the hub imports torch: only when the demo runs

    for name in (WEIGHTS, CARD):
        tmp = out / f".{name}.tmp"
        shutil.copyfile(run / name, tmp)
        tmp.replace(out / name)


def _default_ptbxl() -> Path | None:
    here = Path.cwd()
    for root in (here, *here.parents):
        candidate = root.parent / "shared" / "data" / "ptbxl-500"
        if candidate.is_dir():
            return candidate
    return None


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output folder."),
    n: int = typer.Option(1500, "--n", min=200, help="Synthetic training records."),
    steps: int = typer.Option(300, "--steps", min=1, help="Pretraining steps."),
    ptbxl: Optional[Path] = typer.Option(None, help="A PTB-XL folder to evaluate on (default: ../shared/data/ptbxl-500 when present)."),
    workers: int = typer.Option(2, min=1, help="Worker processes for synthesis."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch and BLAS (default: the cores this process may use)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Synthesize, pretrain a small MERIT model on CPU, evaluate everything, write OUT/report.html + results.json."""
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.eval.report import build_combined_report, write_outputs
    from ecgalign.eval.run import EvalConfig, evaluate
    from ecgalign.hub import load
    from ecgalign.synth.store import synthesize_store
    from ecgalign.tasks import load_recipe
    from ecgalign.train.engine import pretrain

    started = time.time()
    with user_errors():
        set_threads(threads)
        pre = Preprocess.preset("baselines")
        err.print(f"[bold]1.[/] synthesizing {n} training and {n // 4} held-out records (100 Hz, baselines preset)")
        synthesize_store(out / "synthetic-train", n, seed=0, fs=100.0, preprocess=pre, workers=workers, overwrite=True)
        synthesize_store(out / "synthetic-heldout", n // 4, seed=1, fs=100.0, preprocess=pre, workers=workers,
                         overwrite=True)
        recipe = load_recipe("merit", {"model": DEMO_MODEL},
                             [f"optim.max_steps={steps}", "data.batch_size=32", "data.num_workers=1",
                              "train.accelerator=cpu", "optim.lr=1e-3", "optim.warmup_steps=20",
                              f"train.checkpoint_every={steps}", "train.log_every=25"])
        err.print(f"[bold]2.[/] pretraining merit (vit1d, {DEMO_MODEL['encoder_kwargs']}) for {steps} steps on the CPU")
        pretrain(recipe, out / "synthetic-train", out / "merit", overwrite=True, progress=not json_out)
        publish_model(out / "merit", out)
        model = load(out, device="cpu")
        parts = []
        err.print("[bold]3.[/] evaluating on the held-out synthetic records")
        config = EvalConfig(label_sets=["superdiagnostic", "rhythm"], n_boot=300)
        results, figures = evaluate(model, out / "synthetic-heldout", config, cache_dir=out / "merit" / "embeddings")
        parts.append(("Held-out synthetic records", results, figures))
        ptbxl = ptbxl or _default_ptbxl()
        if ptbxl is not None:
            err.print(f"[bold]4.[/] evaluating on {ptbxl} (a real-data check of a model that never saw real ECGs)")
            results, figures = evaluate(model, ptbxl, EvalConfig(label_sets=["superdiagnostic"], n_boot=300),
                                        cache_dir=out / "merit" / "embeddings")
            parts.append((f"PTB-XL ({ptbxl.name})", results, figures))
        else:
            err.print("[bold]4.[/] no PTB-XL folder found (pass --ptbxl PATH); skipping the real-data part")
        combined = {heading: r for heading, r, _ in parts}
        combined["seconds"] = round(time.time() - started, 1)
        preamble = ("<p class='note'>Made by <code>ecgalign demo</code>: a small MERIT model (tiny 1-D ViT) pretrained "
                    f"for {steps} steps on {n} synthetic ECG-report pairs on the CPU, then evaluated. The numbers show "
                    "the toolkit working end to end; they are not a benchmark of the method.</p>")
        paths = write_outputs(out, combined, build_combined_report("ecgalign demo", parts, preamble))
    if json_out:
        print_json(combined)
        return
    _summary(combined)
    err.print(f"wrote {paths['report']} and {paths['results']} in {combined['seconds']:.0f} s", soft_wrap=True)
    typer.echo(next_steps(out, ptbxl))


def next_steps(out: Path, ptbxl: Path | None) -> str:
    """The checkpoint the demo made and the exact commands to run on it next."""
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    data = ptbxl if ptbxl is not None else out / "synthetic-heldout"
    lines = [f"checkpoint: {out} (the run, with checkpoints and metrics.csv: {out / 'merit'})", "next:",
             f"  ecgalign eval all --checkpoint {q(out)} --data {q(data)} --task superdiagnostic",
             f"  ecgalign embed --checkpoint {q(out)} --data {q(data)} --out {q(out / 'embeddings.parquet')}",
             f"  ecgalign pretrain --recipe merit --data {q(out / 'synthetic-train')} --out runs/merit --max-steps 2000"]
    if ptbxl is not None:
        lines.insert(3, f"  ecgalign eval shift --checkpoint {q(out)} --source {q(out / 'synthetic-heldout')} "
                        f"--target {q(ptbxl)}")
    return "\n".join(lines)


def _summary(combined: dict) -> None:
    for heading, results in combined.items():
        if not isinstance(results, dict):
            continue
        lp = results.get("linear_probe", {}).get("superdiagnostic", {})
        zs = results.get("zero_shot", {}).get("superdiagnostic", {})
        line = [heading + ":"]
        for role in ("model", "random_init"):
            if role in lp:
                line.append(f"{role} probe AUROC {lp[role]['fractions'][-1]['seed_averaged']['macro_auroc']:.3f}")
            if role in zs:
                line.append(f"{role} zero-shot AUROC {zs[role]['macro_auroc']:.3f}")
        if "supervised" in lp:
            line.append(f"supervised {lp['supervised']['test']['macro_auroc']:.3f}")
        typer.echo(" | ".join(line))


__all__ = ["demo"]
