"""Checkpoints: weights as safetensors, training state (optimiser, scheduler, RNG, data position) as a torch
file, written into a temporary folder and renamed into place, so a checkpoint is either whole or absent;
``last.json`` (replaced atomically) names the newest one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

LAST = "last.json"
WEIGHTS = "model.safetensors"
STATE = "state.pt"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_weights(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors refuses tensors that share memory (tied embeddings): keep one, record the others as aliases."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    owners: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in owners:
            aliases[name] = owners[key]
            continue
        owners[key] = name
        kept[name] = tensor.detach().contiguous().cpu()
    meta = {**(metadata or {}), "aliases": json.dumps(aliases)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(kept, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    state = load_file(str(path))
    with safe_open(str(path), framework="pt") as fh:
        aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
    for name, owner in aliases.items():
        state[name] = state[owner]
    return state


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


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``last.json`` names, or None when there is none yet."""
    pointer = root / LAST
    if not pointer.is_file():
        return None
    try:
        target = root / json.loads(pointer.read_text())["dir"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{pointer}: damaged checkpoint pointer: {exc}") from exc
    if not (target / WEIGHTS).is_file() or not (target / STATE).is_file():
        raise FileNotFoundError(f"{pointer} names {target.name}, which is incomplete or missing")
    return target


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return load_weights(path / WEIGHTS), torch.load(path / STATE, map_location=map_location, weights_only=False)
