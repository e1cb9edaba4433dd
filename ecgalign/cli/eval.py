"""``ecgalign eval {linear-probe,zero-shot,shift,identify,retrieval,all}``: results.json + report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, print_json, progress_bar, user_errors

app = typer.Typer(help="Evaluate a checkpoint: linear probing, zero-shot, distribution shift, identification, retrieval.",
                  no_args_is_help=True)

CheckpointOpt = typer.Option(..., "--checkpoint", "-c", help="A run folder or a model folder.")
DataOpt = typer.Option(..., "--data", help="A store or a raw dataset folder (PTB-XL, challenge, CPSC2018, CODE, ...).")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _run(protocols: tuple[str, ...], checkpoint: Path, data: Path, task: Optional[list[str]], fractions: str,
         seeds: str, cv: int, out: Optional[Path], baselines: bool, supervised: bool, n_boot: int, device: Optional[str],
         augment: str, json_out: bool, via_digitizer: bool = False) -> None:
    import ecgalign
    from ecgalign.eval.report import build_report, write_outputs
    from ecgalign.eval.run import EvalConfig, evaluate

    with user_errors():
        labels = [t for item in (task or []) for t in item.split(",") if t] or None
        config = EvalConfig(protocols=protocols, label_sets=labels, fractions=_floats(fractions), seeds=_ints(seeds),
                            cv=cv, n_boot=n_boot, baselines=baselines, supervised=supervised)
        model = ecgalign.load(checkpoint, device=device)
        if via_digitizer:  # printouts -> classic digitiser -> this signal model
            from ecgalign.eval.digitized import DigitizedSignalModel

            model = DigitizedSignalModel(model, augment=augment)
        elif hasattr(model, "encode_image"):
            model.eval_augment = augment  # ECGs are rendered to printouts, clean or augmented, then encoded
        elif augment != "none":
            raise ValueError("--augment applies to image models (ecg-scan) and to --via-digitizer; this checkpoint "
                             "encodes signals")
        suffix = ("-digitized" if via_digitizer else "") + ("" if augment == "none" else f"-{augment}")
        out = out or Path(checkpoint) / "eval" / f"{Path(data).name}{suffix}"
        with progress_bar("embed", enabled=not json_out) as update:
            results, figures = evaluate(model, data, config, cache_dir=Path(checkpoint) / "embeddings", progress=update)
        paths = write_outputs(out, results, build_report(results, figures))
    if json_out:
        print_json(results)
    else:
        err.print(f"wrote {paths['results']} and {paths['report']}", soft_wrap=True)


def _command(name: str, protocols: tuple[str, ...], doc: str) -> None:
    def command(
        checkpoint: Path = CheckpointOpt,
        data: Path = DataOpt,
        task: Optional[list[str]] = typer.Option(None, "--task", help="Label set(s), e.g. superdiagnostic (repeatable or comma-separated; default: all)."),
        fractions: str = typer.Option("0.01,0.1,1", help="Label fractions for linear probing."),
        seeds: str = typer.Option("0,1,2", help="Seeds per fraction."),
        cv: int = typer.Option(0, "--cv", help="k-fold cross-validation on the dataset's folds (e.g. 10 for ptbxl-500); 0 = official split."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: CHECKPOINT/eval/DATA-NAME)."),
        baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also evaluate a random-init encoder of the same architecture."),
        supervised: bool = typer.Option(True, "--supervised/--no-supervised", help="Train the supervised-from-scratch reference (linear probing)."),
        n_boot: int = typer.Option(1000, help="Bootstrap resamples for confidence intervals."),
        device: Optional[str] = typer.Option(None, help="cpu, cuda, ... (default: cuda when available)."),
        augment: str = typer.Option("none", help="Image models and --via-digitizer: render the printouts clean (none), light or heavy."),
        via_digitizer: bool = typer.Option(False, "--via-digitizer", help="Signal models: show the model each ECG only through its printout, read back by the classic digitiser (3x4+II, 200 dpi)."),
        json_out: bool = typer.Option(False, "--json", help="Print results.json to stdout too."),
    ) -> None:
        _run(protocols, checkpoint, data, task, fractions, seeds, cv, out, baselines, supervised, n_boot, device,
             augment, json_out, via_digitizer)

    command.__doc__ = doc
    app.command(name)(command)


_command("linear-probe", ("linear-probe",), "Linear probing at label fractions, with random-init and supervised references.")
_command("zero-shot", ("zero-shot",), "Zero-shot classification with the packaged clinical prompt sets.")
_command("identify", ("identify",), "One-shot subject identification on records of the same patient.")
_command("retrieval", ("retrieval",), "ECG <-> report retrieval, recall@1/5/10 both ways.")
_command("reconstruction", ("reconstruction",), "Signal recovered from printouts (image models with a decoder, --via-digitizer): per-lead SNR and limb-lead consistency.")
_command("all", ("linear-probe", "zero-shot", "identify", "retrieval", "reconstruction"), "Every protocol on one dataset, one report.")


@app.command("shift")
def shift_cmd(
    checkpoint: Path = CheckpointOpt,
    source: Path = typer.Option(..., "--source", help="Source dataset (store or folder): PTB-XL, CPSC2018 or Chapman-Shaoxing-Ningbo."),
    target: Path = typer.Option(..., "--target", help="Target dataset, tested whole."),
    seeds: str = typer.Option("0,1,2", help="Probe seeds."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ..."),
    json_out: bool = typer.Option(False, "--json", help="Print results.json to stdout too."),
) -> None:
    """Distribution shift: probe trained on SOURCE, tested on TARGET over MERIT's shared label space."""
    import ecgalign
    from ecgalign.eval.data import attach_embeddings, load_eval_data
    from ecgalign.eval.report import build_report, write_outputs
    from ecgalign.eval.run import _split
    from ecgalign.eval.shift import shift

    with user_errors():
        model = ecgalign.load(checkpoint, device=device)
        cache = Path(checkpoint) / "embeddings"
        src = attach_embeddings(load_eval_data(source), model, cache)
        tgt = attach_embeddings(load_eval_data(target), model, cache)
        split, rule = _split(src)
        result = shift(src, tgt, split, seeds=_ints(seeds), n_boot=n_boot)
        result["split"] = rule
        results = {"checkpoint": {k: model.card.get(k) for k in ("recipe", "step", "encoder")},
                   "dataset": {"name": f"{src.name} -> {tgt.name}", "path": f"{source} -> {target}"}, "shift": result}
        out = out or Path(checkpoint) / "eval" / f"shift-{Path(source).name}-to-{Path(target).name}"
        paths = write_outputs(out, results, build_report(results, []))
    if json_out:
        print_json(results)
    else:
        err.print(f"wrote {paths['results']} and {paths['report']}", soft_wrap=True)
