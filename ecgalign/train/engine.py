"""The pretraining loop on Lightning Fabric (devices, precision, DDP / multi-node launch; torchrun works as is).

The loop itself is ours, so resume is exact: a checkpoint holds the weights, optimiser, scheduler, every
rank's RNG state and the number of batches consumed; batches are a pure function of (seed, position)
(``ecgalign.train.data``) and masks are drawn from a generator seeded by (seed, step, rank, micro-batch).
A run killed at any moment and resumed ends with the same weights as one that never stopped (tested on CPU).

A loss that is not finite stops the run naming the step and its terms; nothing is saved after the last
good checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from signal import SIGKILL
from typing import Any

import numpy as np
import torch
import yaml
from lightning.fabric import Fabric
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ecgalign.data.datasets import ECGDataset
from ecgalign.data.errors import ECGAlignError, InputError
from ecgalign.data.spec import InputSpec, check_store_matches, store_input_mismatch
from ecgalign.data.store import ECGStore
from ecgalign.data.texts import empty_texts, record_texts
from ecgalign.hub.card import write_model
from ecgalign.hub.io import CHECKPOINTS, CONFIG, WEIGHTS, latest_checkpoint, load_weights, read_run_config
from ecgalign.recipes.schema import Recipe
from ecgalign.tasks import get_task, recipe_from_dict
from ecgalign.train.checkpoint import read_checkpoint, write_checkpoint
from ecgalign.train.data import ResumableBatchSampler, make_loader
from ecgalign.train.logs import RunLogger
from ecgalign.train.teacher import teacher_arrays

FAULT_ENV = "ECGALIGN_FAULT_KILL_AFTER_STEP"  # fault injection for the resume tests: SIGKILL after this step


class NonFiniteLossError(ECGAlignError, RuntimeError):
    """Training produced a NaN or infinite loss."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    resumed_from: int
    samples_per_s: float
    final_loss: float | None  # None when no step ran (a resume already at max_steps)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total`` steps."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms, embeddings, special tokens and the temperature."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = param.ndim <= 1 or any(k in name for k in ("embed", "token", "log_scale", "pos_"))
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain values (the state file holds no pickled objects)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    internal = tuple(int(v) for v in (internal.tolist() if torch.is_tensor(internal) else internal))
    random.setstate((version, internal, gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = np.asarray(keys.numpy() if torch.is_tensor(keys) else keys).astype(np.uint32)
    np.random.set_state((kind, keys, int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def mask_generator(seed: int, step: int, rank: int, micro: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, step, rank, micro]).generate_state(1, dtype=np.uint64)[0] >> 1))
    return g


def _input_pipeline(store: ECGStore, spec: InputSpec, strict: bool):
    """None when ``store`` holds the encoder's input; else ``spec.preprocess()`` (said once on stderr), or the
    refusal of ``check_store_matches`` with ``strict`` or when the difference cannot be made up."""
    diff = store_input_mismatch(store, spec)
    if not diff:
        return None
    if strict or _irreversible(diff):
        check_store_matches(store, spec)
    detail = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
    print(f"{store.path}: the store does not hold this encoder's input ({detail}); preprocessing each record on the "
          "fly (resample, band-pass, normalise, as evaluation does). --strict-input refuses instead; a converted "
          "store (`ecgalign data convert ... --preset baselines`) trains faster", file=sys.stderr, flush=True)
    return spec.preprocess()


def _irreversible(diff: dict[str, tuple[Any, Any]]) -> bool:
    """Differences preprocessing cannot make up: a lower sampling rate than the encoder's, or a normalisation
    or band-pass the store already applied (the raw amplitudes are gone)."""
    fs = diff.get("fs")
    return bool((fs and fs[0] < fs[1]) or ("normalize" in diff and diff["normalize"][0] != "none")
                or ("bandpass" in diff and diff["bandpass"][0] is not None))


def _check_run_dir(run_dir: Path, recipe: Recipe, resume: bool, overwrite: bool) -> Path | None:
    """Read-only checks of the run folder; the checkpoint to resume from (or None). Nothing is written, so a
    run that fails to start leaves no folder behind that a retry would trip over."""
    config_path = run_dir / CONFIG
    if run_dir.exists() and any(run_dir.iterdir()) and not (resume or overwrite):
        raise FileExistsError(f"{run_dir}: run folder is not empty; pass --resume to continue it or --overwrite to replace it")
    if resume and not config_path.is_file() and (run_dir / CHECKPOINTS).exists():
        raise InputError(f"{run_dir}: cannot resume: {CONFIG} is missing, so the recipe the checkpoints were trained "
                         "with cannot be checked; restore it or start a new run")
    if resume and config_path.is_file():
        saved_recipe = read_run_config(run_dir)["recipe"]
        try:  # keys added to the recipe since the run started take their defaults (an upgrade can resume)
            saved_recipe = recipe_from_dict(saved_recipe).to_dict()
        except (ECGAlignError, ValueError, TypeError, KeyError):
            pass  # compared as written: the difference is reported below
        if saved_recipe != recipe.to_dict():
            before, after = _flatten(saved_recipe), _flatten(recipe.to_dict())
            diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            raise InputError(f"{config_path}: cannot resume with a different recipe; changed: {', '.join(diff)}")
    return latest_checkpoint(run_dir / CHECKPOINTS) if resume else None


def _start_run_dir(run_dir: Path, recipe: Recipe, data: Path, unpaired: Path | None, resume: bool,
                   overwrite: bool) -> None:
    if overwrite and not resume and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = {"recipe": recipe.to_dict(), "data": str(data), "unpaired": None if unpaired is None else str(unpaired)}
    (run_dir / CONFIG).write_text(yaml.safe_dump(saved, sort_keys=False))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def init_weights_path(source: str | Path) -> Path:
    """The weights ``train.init_from`` names: a model folder's (or finished run's) ``model.safetensors``, else the
    newest checkpoint of a run folder, else the file itself."""
    source = Path(source)
    if source.is_file():
        return source
    if (source / WEIGHTS).is_file():
        return source / WEIGHTS
    ckpt = latest_checkpoint(source / CHECKPOINTS) if source.is_dir() else None
    if ckpt is not None and (ckpt / WEIGHTS).is_file():
        return ckpt / WEIGHTS
    raise InputError(f"train.init_from {str(source)!r}: no {WEIGHTS} there and no checkpoint under "
                     f"{source / CHECKPOINTS} (expected a model folder, a run folder or a weights file)")


def pretrain(recipe: Recipe, data: str | Path, run_dir: str | Path, *, unpaired: str | Path | None = None,
             teacher: str | Path | None = None, resume: bool = False, overwrite: bool = False,
             progress: bool = True, strict_input: bool = False, max_workers: int | None = None,
             log_seconds: float = 30.0) -> TrainResult:
    """Train ``recipe`` on the store at ``data``, writing checkpoints, logs and the final model into ``run_dir``.

    ``unpaired``: a store of signal-only records (no report needed) that join the masked-reconstruction term
    every step, ``data.unpaired_batch_size`` of them (MERIT / MAE recipes). ``teacher``: the frozen ECG-text
    run an ``ecg-scan`` recipe learns from (or ``image.teacher`` in the recipe). A store that does not hold the
    encoder's input is preprocessed on the fly (``InputSpec.preprocess()``, evaluation's path) unless
    ``strict_input``. ``max_workers`` caps ``data.num_workers`` (``--threads``). Progress is a bar on a terminal,
    else one line every ``log_seconds`` (step, loss, current samples/s, ETA).
    """
    t, o = recipe.train, recipe.optim
    run_dir, data = Path(run_dir), Path(data)
    task_cls = get_task(recipe.task)
    task_cls.validate_recipe(recipe)
    init_path = init_weights_path(t.init_from) if t.init_from else None  # a bad path fails before any work
    store = task_cls.open_store(recipe, data)
    spec = recipe.input_spec()
    store_pre = _input_pipeline(store, spec, strict_input) if task_cls.data_kind == "ecg" else None
    if task_cls.needs_teacher:
        teacher = teacher or recipe.image.teacher
        if teacher is None:
            raise InputError(f"recipe {recipe.name!r} learns from a frozen ECG-text model: pass --teacher RUN")
        recipe.image.teacher = str(teacher)
    elif teacher is not None:
        raise InputError(f"--teacher applies to tasks that learn from a trained model; recipe {recipe.name!r} is "
                         f"{recipe.task!r}")
    if task_cls.reads_reports(recipe):
        text_field = recipe.data.text_field
        empty = empty_texts(record_texts(store, text_field))  # InputError naming the store if the column is missing
        if empty:
            what = "no report" if text_field == "report" else f"an empty {text_field!r} text (data.text_field)"
            raise InputError(f"{data}: {empty} of {len(store)} records have {what}, and recipe {recipe.name!r} "
                             "needs one for every record; give signal-only records with --unpaired instead")
    extra = None
    if unpaired is not None:
        problem = task_cls.unpaired_problem(recipe)
        if problem:
            raise InputError(f"recipe {recipe.name!r}: {problem}")
        unpaired = Path(unpaired)
        extra = ECGStore(unpaired)
        extra_pre = _input_pipeline(extra, spec, strict_input)
    fabric = Fabric(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
                    precision=t.precision)
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    checkpoint = _check_run_dir(run_dir, recipe, resume, overwrite) if rank == 0 else None
    checkpoint = fabric.broadcast(checkpoint, src=0)

    torch.manual_seed(t.seed + rank)
    np.random.seed((t.seed + rank) % 2**32)
    random.seed(t.seed + rank)
    context: dict[str, Any] = {}
    if task_cls.needs_teacher:
        cache = Path(teacher) / "embeddings"  # beside the teacher, like evaluation's embedding cache
        if rank == 0:
            teacher_arrays(teacher, data, cache, device=str(fabric.device))
        fabric.barrier()  # the other ranks read what rank 0 computed
        signal, text, info = teacher_arrays(teacher, data, cache, device=str(fabric.device))
        context = {"teacher_signal": signal, "teacher_text": text, "teacher_info": info}
    with fabric.init_module():
        task = task_cls.for_training(recipe, store, context)
    optimizer = torch.optim.AdamW(param_groups(task, o.weight_decay), lr=o.lr, betas=tuple(o.betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(o.warmup_steps, o.max_steps, o.min_lr_ratio))
    if rank == 0:
        _start_run_dir(run_dir, recipe, data, unpaired, resume, overwrite)
    fabric.barrier()

    step, consumed = 0, 0
    if checkpoint is None and init_path is not None:
        task.load_saved_state(load_weights(init_path))
    if checkpoint is not None:
        weights, state = read_checkpoint(Path(checkpoint))
        task.load_saved_state(weights)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, consumed = int(state["step"]), int(state["consumed_batches"])
        _set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
    model, optimizer = fabric.setup(task, optimizer)

    arrays = {k: v for k, v in context.items() if isinstance(v, np.ndarray)}  # read with each batch
    dataset = task_cls.training_dataset(recipe, store, t.seed, arrays or None, preprocess=store_pre)
    sampler = ResumableBatchSampler(len(dataset), recipe.data.batch_size, seed=t.seed, rank=rank, world=world,
                                    start=consumed)
    workers = recipe.data.num_workers if max_workers is None else min(recipe.data.num_workers, max_workers)
    loader = make_loader(dataset, sampler, workers, pin_memory=fabric.device.type == "cuda")
    batches = iter(loader)
    extra_batches = None
    if extra is not None:
        extra_sampler = ResumableBatchSampler(len(extra), recipe.data.unpaired_batch_size or recipe.data.batch_size,
                                              seed=t.seed + 1, rank=rank, world=world, start=consumed)
        extra_batches = iter(make_loader(ECGDataset(extra, with_report=False, seed=t.seed + 1, preprocess=extra_pre),
                                         extra_sampler, workers, pin_memory=fabric.device.type == "cuda"))
    logger = RunLogger(run_dir, resume_step=step, enabled=rank == 0)
    fault_step = int(os.environ.get(FAULT_ENV, "0") or 0)
    resumed_from = step
    samples_seen, clock = 0, time.perf_counter()
    logged_samples, logged_clock = 0, clock  # metrics.csv's samples_per_s is the rate since the last logged row
    last_loss: float | None = None
    bar = _progress(progress and rank == 0, recipe.name, step, o.max_steps, log_seconds)
    try:
        while step < o.max_steps:
            model.train()
            terms_sum: dict[str, float] = {}
            for micro in range(o.grad_accum):
                batch = next(batches)
                if extra_batches is not None:
                    batch["ecg_unpaired"] = next(extra_batches)["ecg"]
                batch = fabric.to_device(batch)
                consumed += 1
                generator = mask_generator(t.seed, step, rank, micro, fabric.device)
                with fabric.no_backward_sync(model, enabled=micro < o.grad_accum - 1):
                    out = model(batch, generator)
                    loss = out["loss"]
                    if not torch.isfinite(loss.detach()):
                        terms = {k: float(v.detach()) for k, v in out.items()}
                        raise NonFiniteLossError(
                            f"step {step + 1}: loss is {float(loss.detach())} (terms {terms}); the run stopped and "
                            f"its last good checkpoint is {latest_checkpoint(run_dir / CHECKPOINTS) or 'none (no step was saved yet)'}"
                        )
                    fabric.backward(loss / o.grad_accum)
                for key, value in out.items():
                    terms_sum[key] = terms_sum.get(key, 0.0) + float(value.detach()) / o.grad_accum
                samples_seen += batch["ecg"].shape[0] * world
            if o.grad_clip:
                fabric.clip_gradients(model, optimizer, max_norm=o.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            last_loss = terms_sum["loss"]
            now = time.perf_counter()
            if step == resumed_from + 1:  # throughput from the end of the first step: no start-up, no warm-up
                samples_seen, clock, logged_samples, logged_clock = 0, now, 0, now
            if step % t.log_every == 0 or step == o.max_steps:
                row = {**terms_sum, "lr": scheduler.get_last_lr()[0]}
                if samples_seen > logged_samples:  # none yet in the row of the first step
                    row["samples_per_s"] = (samples_seen - logged_samples) / max(now - logged_clock, 1e-9)
                logger.log(step, row)
                logged_samples, logged_clock = samples_seen, now
            if bar is not None:
                bar.update(step, last_loss, samples_seen)
            if step % t.checkpoint_every == 0 or step == o.max_steps:
                _save(fabric, run_dir, task, optimizer, scheduler, step, consumed, recipe)
            if fault_step and step == fault_step:
                os.kill(os.getpid(), SIGKILL)
    finally:
        if bar is not None:
            bar.close()
        logger.close()
    if rank == 0:
        _export(run_dir, task, recipe, step)
    fabric.barrier()
    return TrainResult(run_dir, step, resumed_from, samples_seen / max(time.perf_counter() - clock, 1e-9), last_loss)


def _save(fabric, run_dir: Path, task, optimizer, scheduler, step: int, consumed: int, recipe: Recipe) -> None:
    rng = _rng_state()
    states = [rng]
    if fabric.world_size > 1:
        import torch.distributed as dist

        states = [None] * fabric.world_size
        dist.all_gather_object(states, rng)
    if fabric.global_rank == 0:
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                 "consumed_batches": consumed, "rng": states}
        write_checkpoint(run_dir / CHECKPOINTS, step, task.saved_state(), state,
                         {"step": step, "recipe": recipe.name, "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
                         recipe.train.keep_checkpoints)
    fabric.barrier()


def _export(run_dir: Path, task, recipe: Recipe, step: int) -> None:
    """The final model beside the run's config: ``model.safetensors`` + ``model.json`` (the model card)."""
    write_model(run_dir, task, recipe, step)


class _Rate:
    """Samples per second over the current window (restarted every ``window`` seconds), not since the start."""

    def __init__(self, window: float):
        self.window, self.t0, self.n0, self.value = window, time.perf_counter(), 0, 0.0

    def __call__(self, samples: int) -> float:
        now = time.perf_counter()
        if samples < self.n0:  # the counter restarted (after the first step)
            self.t0, self.n0 = now, samples
        elif now - self.t0 >= min(self.window, 2.0) and samples > self.n0:
            self.value = (samples - self.n0) / (now - self.t0)
            if now - self.t0 >= self.window:
                self.t0, self.n0 = now, samples
        return self.value


class _Bar:
    """A rich bar on a terminal."""

    def __init__(self, name: str, start: int, total: int, every: float):
        self.progress = Progress(TextColumn(f"[bold]pretrain {name}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=start, loss="-", rate="")
        self.rate = _Rate(10.0)

    def update(self, step: int, loss: float, samples: int) -> None:
        self.progress.update(self.task, completed=step, loss=f"{loss:.4f}", rate=f"{self.rate(samples):,.0f} samples/s")

    def close(self) -> None:
        self.progress.stop()


class _Lines:
    """Progress for logs (stderr is not a terminal): one line every ``every`` seconds and at the last step, with
    step, loss, the samples/s of that interval and the ETA at that rate."""

    def __init__(self, name: str, start: int, total: int, every: float):
        self.name, self.total, self.every = name, total, every
        self.t0, self.step0 = time.perf_counter(), start
        self.rate = _Rate(every)

    def update(self, step: int, loss: float, samples: int) -> None:
        rate, now = self.rate(samples), time.perf_counter()
        if now - self.t0 < self.every and step < self.total:
            return
        per_step = (now - self.t0) / max(step - self.step0, 1)
        eta = time.strftime("%H:%M:%S", time.gmtime((self.total - step) * per_step))
        print(f"pretrain {self.name}: step {step}/{self.total} loss {loss:.4f} {rate:,.1f} samples/s ETA {eta}",
              file=sys.stderr, flush=True)
        self.t0, self.step0 = now, step

    def close(self) -> None:
        return None


def _progress(enabled: bool, name: str, start: int, total: int, every: float) -> _Bar | _Lines | None:
    if not enabled:
        return None
    return _Bar(name, start, total, every) if sys.stderr.isatty() else _Lines(name, start, total, every)
