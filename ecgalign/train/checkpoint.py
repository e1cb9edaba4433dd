"""Checkpoints: weights as safetensors, training state (optimiser, scheduler, RNG, data position) as a torch
file of plain tensors, numbers and strings, written into a temporary folder and renamed into place, so a
checkpoint is either whole or absent; ``last.json`` (replaced atomically) names the newest one.

Security: a run folder may come from someone else. The state file is read with ``weights_only=True`` (no
arbitrary unpickling); the only extra types admitted are NumPy's array reconstruction, which runs no code and
which the state files of ecgalign 0.1.0 contain (their NumPy RNG state).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgalign.data.errors import InputError
from ecgalign.hub.io import LAST, STATE, WEIGHTS, atomic_write_text, load_weights, save_weights


def write_checkpoint(root: Path, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any],
                     meta: dict[str, Any], keep: int) -> Path:
    """``root/step-NNNNNNNN/`` with weights + state + meta.json, then ``last.json``; keeps the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(weights, tmp / WEIGHTS, {"step": str(step)})
    torch.save(state, tmp / STATE)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    if final.exists():  # a rerun of the same step after a crash between rename and last.json
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(root / LAST, json.dumps({"step": step, "dir": final.name}))
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _numpy_array_globals() -> list[Any]:
    """What unpickling a NumPy array needs (array reconstruction, dtypes), nothing that can run code."""
    core = getattr(np, "_core", None) or np.core
    names = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    names += [type(np.dtype(code)) for code in ("uint32", "float64", "int64", "uint8")]
    return names


def read_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The training state of a checkpoint, without unpickling anything but tensors, plain values and NumPy
    arrays. A file that asks for anything else (code) is refused with ``InputError`` naming it."""
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as exc:
        raise InputError(f"{path}: refused to load the training state: it is damaged or holds objects other than "
                         f"tensors and plain values ({str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(state, dict):
        raise InputError(f"{path}: the training state is not a mapping")
    return state


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return load_weights(path / WEIGHTS), read_state(path / STATE, map_location)
