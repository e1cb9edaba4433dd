"""Echo-Enhanced ECG (EEE, seed 003_74d6fba967a030e7): an ECG encoder learns from echo clips of the same study.

Two ECG sides (``recipe.echo.ecg_side``):

- ``strip`` (the paper, Sec. 3.3-3.4): the ECG strip burned into the echo screen, cut into tokens by an
  ``ecg_token_*`` encoder; ECG token t and echo clip t cover the same ``token_size / fs`` seconds, so the loss
  is ``w_token L_token + w_sid L_sid + w_pid L_pid + w_align L_align`` (``losses.hierarchical.eee_loss``), a
  ``objective.shift_fraction`` of each batch rotated by whole tokens (``shift_signals``) for the alignment head
  and left out of the contrastive terms.
- ``paired`` (ours): the study's 12-lead ECG (``recipe.echo.ecg_store``) through any registered 12-lead encoder,
  aligned with the echo sequence at study and patient level only (``sid``, ``pid``): the paired ECG is not
  recorded during the echo, so there is neither a token correspondence nor a shift to detect. Its checkpoint
  loads as an ordinary signal model, so every protocol runs on it.

Batch contract (``EchoSequences.batch``): ``ecg`` float32 (B, leads, S) in the recipe's input spec (strip:
z-scored, zero past the valid tokens); ``echo`` uint8 (B, T, 1, F, H, W); ``echo_mask`` (B, T) bool, True =
padded clip (and, for ``strip``, padded ECG token); ``study_id``, ``patient_id`` int64 (B,); ``labels`` float32
(B, n_labels) the echo store's labels (NaN = unknown); ``index`` int64 (B,).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecgalign.data.errors import InputError
from ecgalign.data.spec import InputSpec, store_input_mismatch
from ecgalign.data.store import ECGStore
from ecgalign.echo.store import EchoStore
from ecgalign.losses.hierarchical import eee_loss
from ecgalign.models.encoders.ecg import create_encoder
from ecgalign.models.encoders.echo import create_echo_encoder
from ecgalign.models.heads.alignment import AlignmentHead, shift_signals
from ecgalign.recipes.schema import Recipe
from ecgalign.tasks.base import Task, register_task


def paired_store_path(recipe: Recipe, store: EchoStore) -> Path:
    """The paired 12-lead store: ``recipe.echo.ecg_store``, else ``ecg/`` beside the DICOMs the store came from."""
    if recipe.echo.ecg_store:
        return Path(recipe.echo.ecg_store)
    source = store.meta.get("source")
    if not source:
        raise InputError(f"{store.path}: the echo store names no source folder; set echo.ecg_store to the paired "
                         "12-lead store")
    return Path(source) / "ecg"


class EchoSequences:
    """Sequences of ``clips`` echo clips with the matching ECG, one per extracted echo file (see the module
    docstring for the batch keys). ``seed`` (training) draws one start time per file, deterministic in
    (seed, file); ``seed=None`` starts every file at its first frame. Files without a paired ECG (``paired``)
    are left out and counted in ``skipped``."""

    def __init__(self, store: EchoStore, spec: InputSpec, *, clips: int, clip_shape: tuple[int, int, int, int],
                 token_size: int | None, paired: ECGStore | None = None, seed: int | None = None):
        self.store, self.spec, self.clips, self.seed = store, spec, clips, seed
        self.channels, self.frames, self.height, self.width = clip_shape
        self.paired = paired
        self.strip_fs = float(store.meta["config"]["strip_fs"])
        if paired is None:
            if token_size is None or spec.num_leads != 1 or abs(spec.fs - self.strip_fs) > 1e-6:
                raise InputError(f"{store.path}: the strip ECG side needs a 1-lead token encoder at the store's strip "
                                 f"rate {self.strip_fs:g} Hz; the recipe's input is {spec.num_leads} leads at "
                                 f"{spec.fs:g} Hz (set data.fs: {self.strip_fs:g}, data.leads: [II])")
            if spec.samples != clips * token_size:
                raise InputError(f"recipe input of {spec.samples} samples is not echo.clips x token_size = "
                                 f"{clips} x {token_size}; set data.seconds to {clips * token_size / spec.fs:g}")
            self.token_s = token_size / self.strip_fs
        else:
            self.token_s = self.frames / 30.0  # clips of F frames at the store's nominal 30 fps and up
        self.token_size = token_size
        rows = np.arange(len(store))
        self.skipped = 0
        self._paired_row: dict[int, int] = {}
        if paired is not None:
            index = {rid: k for k, rid in enumerate(paired.meta.record_id)}
            found = [index.get(f"s{int(s)}") for s in store.items.study_id]
            self._paired_row = {int(r): k for r, k in zip(rows, found) if k is not None}
            self.skipped = len(rows) - len(self._paired_row)
            rows = np.array(sorted(self._paired_row), dtype=np.int64)
            self._raw = bool(store_input_mismatch(paired, spec))  # preprocess each record on the fly
            self._preprocess = spec.preprocess()
        self.rows = rows
        self.label_names = list(store.label_names)

    def __len__(self) -> int:
        return int(self.rows.size)

    def _item(self, i: int) -> dict[str, Any]:
        row = self.store.items.iloc[i]
        clip = self.store.clip(i)  # (N, S, S) uint8
        n, fps = clip.shape[0], float(row.fps)
        strip = self.store.strip(i)
        duration = n / fps if self.paired is not None else min(n / fps, strip.size / self.strip_fs)
        valid = max(1, min(self.clips, int(duration / self.token_s)))
        slack = max(duration - valid * self.token_s, 0.0)
        start = 0.0 if self.seed is None else float(np.random.default_rng([self.seed, i]).uniform(0.0, slack))
        offsets = (np.arange(self.frames) + 0.5) * self.token_s / self.frames
        times = start + np.arange(valid)[:, None] * self.token_s + offsets  # (valid, F) seconds
        frames = clip[np.floor(times * fps).astype(np.int64) % n]  # (valid, F, S, S)
        mask = np.arange(self.clips) >= valid
        if self.paired is None:
            a = round(start * self.strip_fs)
            piece = strip[a:a + valid * self.token_size].astype(np.float32)
            piece = (piece - piece.mean()) / (piece.std() + 1e-6)
            ecg = np.zeros((1, self.spec.samples), np.float32)
            ecg[0, :piece.size] = piece
        else:
            k = self._paired_row[i]
            ecg = (self._preprocess(self.paired.record(k)).signal if self._raw else self.paired.signal(k))
            ecg = np.asarray(ecg, np.float32)
        return {"ecg": ecg, "frames": frames, "mask": mask, "study_id": int(row.study_id),
                "patient_id": int(row.subject_id), "labels": self.store.labels(i)}

    def batch(self, positions) -> dict[str, torch.Tensor]:
        """The collated sequences at dataset ``positions``."""
        index = self.rows[np.asarray(positions, dtype=np.int64)]
        items = [self._item(int(i)) for i in index]
        b, t, f, h, w = len(items), self.clips, self.frames, self.height, self.width
        size = items[0]["frames"].shape[-2:]
        echo = torch.zeros((b, t, self.channels, f, h, w), dtype=torch.uint8)
        for j, item in enumerate(items):
            frames = torch.from_numpy(np.ascontiguousarray(item["frames"]))  # (valid, F, S, S) uint8
            if tuple(size) != (h, w):
                frames = F.interpolate(frames.flatten(0, 1)[:, None].float(), size=(h, w), mode="area")
                frames = frames.round().clamp(0, 255).to(torch.uint8).view(-1, f, h, w)
            echo[j, :len(frames)] = frames[:, None].expand(-1, self.channels, -1, -1, -1)
        return {"ecg": torch.from_numpy(np.stack([it["ecg"] for it in items])),
                "echo": echo,
                "echo_mask": torch.from_numpy(np.stack([it["mask"] for it in items])),
                "study_id": torch.tensor([it["study_id"] for it in items], dtype=torch.int64),
                "patient_id": torch.tensor([it["patient_id"] for it in items], dtype=torch.int64),
                "labels": torch.from_numpy(np.stack([it["labels"] for it in items]).astype(np.float32)),
                "index": torch.from_numpy(index)}


@register_task("eee")
class EEETask(Task):
    """ECG encoder (``model.encoder``) + echo encoder (``echo.encoder``) + alignment head (seed 003, 3.3-3.4)."""

    family = "ecgalign.eee"
    input_kind = "signal"
    loss_terms = ("token", "sid", "pid", "align")
    data_kind = "echo"

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        m, e, o = recipe.model, recipe.echo, recipe.objective
        self.ecg = create_encoder(m.encoder, input_spec=recipe.input_spec(), **m.encoder_kwargs)
        self.echo = create_echo_encoder(e.encoder, **{"max_clips": max(64, e.clips), **e.encoder_kwargs})
        dim = self.echo.embed_dim
        self.ecg_proj = None  # no ECG-text joint space (hub.SignalModel.has_joint_space)
        self.to_echo = nn.Identity() if self.ecg.embed_dim == dim else nn.Linear(self.ecg.embed_dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / o.temperature)),
                                      requires_grad=o.learnable_temperature)
        self.head = AlignmentHead(dim, dim) if o.align > 0 else None
        self.strip = e.ecg_side == "strip"

    # ------------------------------------------------------------------------------------------ recipe, data
    @classmethod
    def validate_recipe(cls, recipe: Recipe) -> None:
        super().validate_recipe(recipe)
        o, e = recipe.objective, recipe.echo
        if e.ecg_side == "strip" and not recipe.model.encoder.startswith("ecg_token"):
            raise InputError(f"recipe {recipe.name!r}: echo.ecg_side 'strip' tokenises the strip in time with the "
                             f"clips and needs an ecg_token_* encoder, got {recipe.model.encoder!r}")
        if e.ecg_side == "paired" and (o.token > 0 or o.align > 0):
            raise InputError(f"recipe {recipe.name!r}: the paired 12-lead ECG is not recorded during the echo, so "
                             "objective.token and objective.align must be 0 (use sid / pid)")

    @classmethod
    def open_store(cls, recipe: Recipe, data: Path) -> EchoStore:
        return EchoStore(data)

    @classmethod
    def sequences(cls, recipe: Recipe, store: EchoStore, seed: int | None) -> EchoSequences:
        """The sequences of ``store`` for ``recipe`` (``seed=None``: every file from its first frame)."""
        with torch.random.fork_rng(devices=[]), torch.device("meta"):  # shapes only: no weights, RNG untouched
            probe = cls(recipe)
        paired = None if recipe.echo.ecg_side == "strip" else ECGStore(paired_store_path(recipe, store))
        return EchoSequences(store, recipe.input_spec(), clips=recipe.echo.clips, clip_shape=probe.echo.clip_shape,
                             token_size=getattr(probe.ecg, "token_size", None), paired=paired, seed=seed)

    @classmethod
    def training_dataset(cls, recipe: Recipe, store, seed: int, extra: dict[str, Any] | None = None,
                         preprocess=None) -> EchoSequences:
        return cls.sequences(recipe, store, seed)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def for_training(cls, recipe: Recipe, store, context: dict[str, Any]) -> EEETask:
        return cls(recipe)

    @classmethod
    def from_saved(cls, recipe: Recipe, state: dict[str, torch.Tensor], card: dict[str, Any]) -> EEETask:
        task = cls(recipe)
        task.load_saved_state(state)
        return task

    def fresh_copy(self) -> EEETask:
        return type(self)(self.recipe)

    def card_fields(self) -> dict[str, Any]:
        e = self.recipe.echo
        return {"encoder": self.ecg.config, "embed_dim": self.ecg.embed_dim,
                "input_spec": self.ecg.input_spec.to_dict(), "echo_encoder": self.echo.config,
                "echo_dim": self.echo.embed_dim, "ecg_side": e.ecg_side, "clips": e.clips, "proj_dim": None,
                "text_encoder": None}

    # ------------------------------------------------------------------------------------------ training
    def embed_pair(self, batch: dict[str, Any], ecg: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """[CLS] and token embeddings of both sides in the echo width: ``z_ecg``, ``z_echo`` (B, D),
        ``t_ecg``, ``t_echo`` (B, T, D) (``t_ecg`` is ``z_ecg`` as one token for ``paired``)."""
        x = batch["ecg"] if ecg is None else ecg
        mask = batch["echo_mask"]
        f_echo = self.echo.forward_features(batch["echo"], mask)  # (B, 1 + T, D)
        if self.strip:
            f_ecg = self.to_echo(self.ecg.forward_features(x, mask))  # (B, 1 + T, D)
            z_ecg, t_ecg = self.ecg.pool(f_ecg), self.ecg.tokens(f_ecg)
        else:
            z_ecg = self.to_echo(self.ecg(x))  # (B, D)
            t_ecg = z_ecg[:, None]
        return {"z_ecg": z_ecg, "z_echo": self.echo.pool(f_echo), "t_ecg": t_ecg, "t_echo": self.echo.tokens(f_echo)}

    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        o = self.recipe.objective
        x, mask, shifted = batch["ecg"].float(), batch["echo_mask"], None
        if self.head is not None and o.shift_fraction > 0:
            lengths = (~mask).sum(1) * self.ecg.token_size
            x, shifted = shift_signals(x, o.shift_fraction, lengths, step=self.ecg.token_size, generator=generator)
        z = self.embed_pair(batch, x)
        align = None if self.head is None else self.head(z["z_ecg"], z["z_echo"])
        t_ecg, t_echo, pad = (z["t_ecg"], z["t_echo"], mask) if self.strip else (z["t_ecg"], z["z_echo"][:, None], None)
        out = eee_loss(z["z_ecg"], z["z_echo"], t_ecg, t_echo, batch["study_id"], batch["patient_id"],
                       self.log_scale.exp().clamp(max=100.0), padding_mask=pad, shifted=shifted, align_logits=align,
                       margin_same=o.margin_same, margin_other=o.margin_other, mining=o.mining)
        if not self.strip:  # no token level: one "token" per side would repeat sid
            out = {k: v for k, v in out.items() if not k.startswith("token")}
        out["loss"] = self.weighted_sum(out)
        return out

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ECG-encoder features (B, D_ecg): what every ECG-only protocol embeds."""
        return self.ecg(x)

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        raise InputError(f"recipe {self.recipe.name!r} is aligned with echo, not text: it has no ECG-text joint "
                         "space; use features()")

    @torch.no_grad()
    def encode_text(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        raise InputError(f"recipe {self.recipe.name!r} has no text encoder")
