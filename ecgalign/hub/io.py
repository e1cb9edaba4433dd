"""The run-folder format: file names, atomic writes, safetensors weights (tied tensors kept once), the
checkpoint pointer and the saved config. Everything that reads or writes a trained model on disk uses these.

A run folder::

    config.yaml            the resolved recipe + data paths (written when training starts)
    checkpoints/last.json  names the newest complete checkpoint
    checkpoints/step-NNNNNNNN/{model.safetensors, state.pt, meta.json}
    model.safetensors      the final weights (written when training ends)
    model.json             the model card
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ecgalign.data.errors import InputError

CARD = "model.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
STATE = "state.pt"
LAST = "last.json"
CHECKPOINTS = "checkpoints"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file renamed into place: the file is whole or absent."""
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
    """The tensors of a safetensors file (aliases restored); a damaged file raises ``InputError`` naming it."""
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors weights file ({exc})") from exc
    for name, owner in aliases.items():
        state[name] = state[owner]
    return state


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``root/last.json`` names, or None when there is none yet."""
    pointer = root / LAST
    if not pointer.is_file():
        return None
    try:
        target = root / json.loads(pointer.read_text())["dir"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{pointer}: damaged checkpoint pointer: {exc}") from exc
    if not (target / WEIGHTS).is_file() or not (target / STATE).is_file():
        raise FileNotFoundError(f"{pointer} names {target.name}, which is incomplete or missing")
    return target


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The saved ``config.yaml`` of a run: ``{"recipe": {...}, "data": ..., ...}``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not an ecgalign run ({CONFIG} is missing)")
    try:
        saved = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(saved, dict) or not isinstance(saved.get("recipe"), dict):
        raise InputError(f"{path}: expected a mapping with a 'recipe' section")
    return saved
