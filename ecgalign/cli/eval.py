"""``ecgalign eval <protocol>|all|shift``: results.json + report.html. The commands and their options are
generated from the evaluation-protocol registry: each command offers only the options its protocols read."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from ecgalign.cli._common import (
    ALIGN_ROWS_HELP,
    err,
    print_json,
    progress_bar,
    row_alignment_line,
    set_align_rows,
    set_threads,
    user_errors,
)


class _ProtocolCommands(TyperGroup):
    """The ``eval`` group: its protocol commands come from the protocol registry, which imports torch and the
    protocols, so they are built the first time the group is asked for a command (``ecgalign eval ...``), not
    when any other command (``ecgalign --version``, ``ecgalign data ...``) starts."""

    def _load(self) -> None:
        if "all" not in self.commands:
            _register_commands()
            for name, command in typer.main.get_group(app).commands.items():
                self.commands.setdefault(name, command)

    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx, cmd_name):  # type: ignore[no-untyped-def]
        self._load()
        return super().get_command(ctx, cmd_name)


app = typer.Typer(help="Evaluate a checkpoint: linear probing, zero-shot, distribution shift, identification, retrieval.",
                  no_args_is_help=True, cls=_ProtocolCommands)


def default_cache_dir() -> Path:
    """Embedding cache: ``$ECGALIGN_CACHE``, else ``$XDG_CACHE_HOME/ecgalign``, else ``~/.cache/ecgalign``."""
    if os.environ.get("ECGALIGN_CACHE"):
        return Path(os.environ["ECGALIGN_CACHE"]) / "embeddings"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "ecgalign" / "embeddings"


def default_out(checkpoint: Path, name: str) -> Path:
    """CHECKPOINT/eval/NAME, or ./ecgalign-eval/CHECKPOINT-NAME/NAME when the checkpoint folder is read-only."""
    checkpoint = Path(checkpoint)
    if os.access(checkpoint, os.W_OK):
        return checkpoint / "eval" / name
    out = Path("ecgalign-eval") / checkpoint.resolve().name / name
    err.print(f"{checkpoint} is read-only: writing the evaluation to {out}", soft_wrap=True)
    return out


def _say(line: str) -> None:
    err.print(line, soft_wrap=True, highlight=False, markup=False)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _param(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


# every option an eval command can have: name -> (annotation, typer option)
OPTIONS: dict[str, tuple[Any, Any]] = {
    "checkpoint": (Path, typer.Option(..., "--checkpoint", "-c", help="A run folder or a model folder.")),
    "data": (Path, typer.Option(..., "--data", help="A store or a raw dataset folder (PTB-XL, challenge, CPSC2018, CODE, ...).")),
    "task": (Optional[list[str]], typer.Option(None, "--task", help="Label set(s), e.g. superdiagnostic (repeatable or comma-separated; default: all).")),
    "fractions": (str, typer.Option("0.01,0.1,1", help="Label fractions for linear probing.")),
    "seeds": (str, typer.Option("0,1,2", help="Seeds per fraction.")),
    "cv": (int, typer.Option(0, "--cv", help="k-fold cross-validation on the dataset's folds (e.g. 10 for ptbxl-500); 0 = official split.")),
    "supervised": (bool, typer.Option(True, "--supervised/--no-supervised", help="Train the supervised-from-scratch reference (linear probing).")),
    "class_weight": (Optional[str], typer.Option(None, "--class-weight", help="Supervised reference and fine-tuning: 'balanced' weighs each class's positives by its negatives / positives in the BCE (default: unweighted).")),
    "out": (Optional[Path], typer.Option(None, "--out", "-o", help="Output folder (default: CHECKPOINT/eval/DATA-NAME).")),
    "baselines": (bool, typer.Option(True, "--baselines/--no-baselines", help="Also evaluate a random-init encoder of the same architecture.")),
    "n_boot": (int, typer.Option(1000, help="Bootstrap resamples for confidence intervals.")),
    "device": (Optional[str], typer.Option(None, help="cpu, cuda, ... (default: cuda when available).")),
    "augment": (str, typer.Option("none", help="Image models and --via-digitizer: render the printouts clean (none), light or heavy.")),
    "align_rows": (bool, typer.Option(False, "--align-rows", help=ALIGN_ROWS_HELP)),
    "via_digitizer": (bool, typer.Option(False, "--via-digitizer", help="Signal models: show the model each ECG only through its printout, read back by the classic digitiser (3x4+II, 200 dpi).")),
    "cache_dir": (Optional[Path], typer.Option(None, "--cache-dir", help="Embedding cache (default: $ECGALIGN_CACHE or ~/.cache/ecgalign; never the checkpoint folder).")),
    "decoder": (str, typer.Option("transformer", "--decoder", help="Report generation: 'transformer' (small decoder trained from scratch) or a local Hugging Face causal-LM folder (LoRA; extra 'generate').")),
    "qa": (Optional[Path], typer.Option(None, "--qa", help="Report generation: an ECG-QA-style JSON file (question, answer, ecg_id); its answers become the targets.")),
    "json_out": (bool, typer.Option(False, "--json", help="Print results.json to stdout too.")),
    "train_data": (Optional[Path], typer.Option(None, "--train-data", help="External validation: train and select the probe on this dataset, test on all of --data.")),
    "val_data": (Optional[Path], typer.Option(None, "--val-data", help="With --train-data: select on this dataset.")),
    "val_fold": (Optional[int], typer.Option(None, "--val-fold", help="With --train-data: select on this fold of it, train on the others.")),
    "echo": (Optional[Path], typer.Option(None, "--echo", help="An echo store (ecgalign echo extract) for echo-retrieval / echo-shift (default: --data when it is one; the other protocols then read its paired ECG store).")),
    "echo_part": (str, typer.Option("test", "--echo-part", help="Echo files evaluated: 'test' (the held-out patients of the evaluation split) or 'all' (for an echo store the run never saw).")),
    "threads": (Optional[int], typer.Option(None, "--threads", min=1, help="CPU threads for torch, BLAS and loaders (default: the cores this process may use).")),
}
EXTERNAL = ("train_data", "val_data", "val_fold")  # options of the commands that run an EXTERNAL_PROTOCOLS one
COMMON = ("checkpoint", "data", "task", "out", "baselines", "n_boot", "device", "augment", "align_rows",
          "via_digitizer", "cache_dir", "json_out", "threads")


def _run(protocols: tuple[str, ...], checkpoint: Path, data: Path, task: Optional[list[str]] = None,
         fractions: str = "0.01,0.1,1", seeds: str = "0,1,2", cv: int = 0, out: Optional[Path] = None,
         baselines: bool = True, supervised: bool = True, n_boot: int = 1000, device: Optional[str] = None,
         augment: str = "none", json_out: bool = False, via_digitizer: bool = False,
         cache_dir: Optional[Path] = None, decoder: str = "transformer", qa: Optional[Path] = None,
         train_data: Optional[Path] = None, val_data: Optional[Path] = None,
         val_fold: Optional[int] = None, threads: Optional[int] = None, echo: Optional[Path] = None,
         echo_part: str = "test", align_rows: bool = False, class_weight: Optional[str] = None) -> None:
    import ecgalign
    from ecgalign.eval.report import build_report, write_outputs
    from ecgalign.eval.run import EvalConfig, evaluate
    from ecgalign.hub import DigitizedSignalModel
    from ecgalign.hub.embed import is_image_table

    with user_errors():
        labels = [t for item in (task or []) for t in item.split(",") if t] or None
        set_threads(threads)
        config = EvalConfig(protocols=protocols, label_sets=labels, fractions=_floats(fractions), seeds=_ints(seeds),
                            cv=cv, n_boot=n_boot, baselines=baselines, supervised=supervised,
                            supervised_class_weight=class_weight,
                            generation={"decoder": decoder, "qa": str(qa) if qa else None},
                            train_data=None if train_data is None else str(train_data),
                            val_data=None if val_data is None else str(val_data), val_fold=val_fold,
                            echo=None if echo is None else str(echo), echo_part=echo_part)
        model = ecgalign.load(checkpoint, device=device)
        if via_digitizer:  # printouts -> classic digitiser -> this signal model
            model = DigitizedSignalModel(model, augment=augment)
        elif model.input_kind == "image":
            model.eval_augment = augment  # ECGs are rendered to printouts, clean or augmented, then encoded
        elif augment != "none":
            raise ValueError("--augment applies to image models (ecg-scan) and to --via-digitizer; this checkpoint "
                             "encodes signals")
        set_align_rows(model, align_rows, is_image_table(data))
        suffix = ("-digitized" if via_digitizer else "") + ("" if augment == "none" else f"-{augment}")
        suffix += "-aligned" if align_rows else ""
        if train_data is not None:
            suffix = f"-from-{Path(train_data).name}{suffix}"
        out = out or default_out(checkpoint, f"{Path(data).name}{suffix}")
        with progress_bar("embed", enabled=not json_out) as update:
            results, figures = evaluate(model, data, config, cache_dir=cache_dir or default_cache_dir(),
                                        progress=update, log=None if json_out else _say)
        if getattr(model, "align_rows", False):
            results["row_alignment"] = dict(model.row_alignment)
        paths = write_outputs(out, results, build_report(results, figures))
    if json_out:
        print_json(results)
    else:
        err.print(f"wrote {paths['results']} and {paths['report']}", soft_wrap=True)
        if getattr(model, "align_rows", False):
            err.print(row_alignment_line(model.row_alignment), soft_wrap=True)


def _command(name: str, protocols: tuple[str, ...], options: tuple[str, ...], doc: str) -> None:
    from ecgalign.eval.run import EXTERNAL_PROTOCOLS

    extra = EXTERNAL if set(protocols) & set(EXTERNAL_PROTOCOLS) else ()
    wanted = [o for o in OPTIONS if o in set(COMMON) | set(options) | set(extra)]

    def command(**kwargs: Any) -> None:
        _run(protocols, **kwargs)

    command.__signature__ = inspect.Signature([_param(o, *OPTIONS[o]) for o in wanted])  # type: ignore[attr-defined]
    command.__doc__ = doc
    app.command(name)(command)


_registered: list[bool] = []


def _register_commands() -> None:
    """Add one command per registered protocol and ``all`` to ``app`` (once)."""
    if _registered:
        return
    _registered.append(True)
    from ecgalign.eval.protocols import get_protocol, list_protocols  # torch + every protocol: only for eval
    from ecgalign.eval.run import default_protocols

    for name in list_protocols():
        protocol = get_protocol(name)
        if protocol.run is not None:
            _command(name, (name,), protocol.options, protocol.summary)
    everything = default_protocols()
    options = tuple(dict.fromkeys(o for p in everything for o in get_protocol(p).options))
    _command("all", everything, options, "Every protocol on one dataset, one report.")



@app.command("shift")
def shift_cmd(
    checkpoint: Path = OPTIONS["checkpoint"][1],
    source: Path = typer.Option(..., "--source", help="Source dataset (store or folder): PTB-XL, CPSC2018 or Chapman-Shaoxing-Ningbo."),
    target: Path = typer.Option(..., "--target", help="Target dataset, tested whole."),
    val_fold: Optional[int] = typer.Option(None, "--val-fold", help="Select the probe on this fold of SOURCE and train on all its others (default: SOURCE's own split)."),
    threads: Optional[int] = OPTIONS["threads"][1],
    seeds: str = typer.Option("0,1,2", help="Probe seeds."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ..."),
    cache_dir: Optional[Path] = OPTIONS["cache_dir"][1],
    json_out: bool = typer.Option(False, "--json", help="Print results.json to stdout too."),
) -> None:
    """Distribution shift: probe trained on SOURCE, tested on TARGET over MERIT's shared label space."""
    import ecgalign
    from ecgalign.eval.data import attach_embeddings, check_disjoint, load_eval_data
    from ecgalign.eval.report import build_report, write_outputs
    from ecgalign.eval.run import external_split, split_of
    from ecgalign.eval.shift import shift

    with user_errors():
        set_threads(threads)
        model = ecgalign.load(checkpoint, device=device)
        cache = cache_dir or default_cache_dir()
        src_meta, tgt_meta = load_eval_data(source), load_eval_data(target)
        check_disjoint(tgt_meta, src_meta)  # metadata only: fails before any embedding
        with progress_bar("embed", enabled=not json_out) as update:
            src = attach_embeddings(src_meta, model, cache, progress=update)
            tgt = attach_embeddings(tgt_meta, model, cache, progress=update)
        split, rule = split_of(src) if val_fold is None else external_split(src, None, val_fold)
        result = shift(src, tgt, split, seeds=_ints(seeds), n_boot=n_boot)
        result["split"] = rule
        results = {"checkpoint": {k: model.card.get(k) for k in ("recipe", "step", "encoder")},
                   "dataset": {"name": f"{src.name} -> {tgt.name}", "path": f"{source} -> {target}"}, "shift": result}
        out = out or default_out(checkpoint, f"shift-{Path(source).name}-to-{Path(target).name}")
        paths = write_outputs(out, results, build_report(results, []))
    if json_out:
        print_json(results)
    else:
        err.print(f"wrote {paths['results']} and {paths['report']}", soft_wrap=True)
