"""The loaded forms of ecgalign's own models: ``SignalModel`` (ECG-text and signal-only tasks) and
``ImageModel`` (ECG-Scan printout encoders). Both satisfy ``ecgalign.hub.Embedder``; ``MODEL_KINDS`` maps a
task's ``input_kind`` to the class that wraps it, so loading never branches on a task's name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgalign.data.errors import NotApplicableError
from ecgalign.data.registry import Registry
from ecgalign.models.encoders.text import TextEncoder
from ecgalign.render import image_tensor, ink_images, read_image
from ecgalign.tasks import Task

MODEL_KINDS: Registry[type] = Registry("model kind")


def _as_float_tensor(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32) if not torch.is_tensor(values) else values).float()


def _name(image) -> str | None:
    return str(image) if isinstance(image, (str, Path)) else None


def _file_key(image) -> tuple | None:
    """A file's identity while it is unchanged (resolved path, mtime, size); None for anything but a file."""
    if not isinstance(image, (str, Path)):
        return None
    try:
        st = Path(image).stat()
    except OSError:
        return None
    return str(Path(image).resolve()), st.st_mtime_ns, st.st_size


def seeded_fresh_copy(task: Task, seed: int) -> Task:
    """``task.fresh_copy()`` drawn from ``seed`` without disturbing the global RNG."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return task.fresh_copy()
    finally:
        torch.random.set_rng_state(state)


def recover_from_printouts(render, reconstruct, signals, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(reconstruction of each record's printout, the record over its record-wide standard deviation): the
    decoder's estimate and the reference in the same units (the ECG-Scan decoder's training target)."""
    signals = np.asarray(signals, dtype=np.float32)
    est = [reconstruct(render(signals[i:i + batch_size]), batch_size) for i in range(0, len(signals), batch_size)]
    scale = signals.reshape(len(signals), -1).std(axis=1).clip(min=1e-3)
    return np.concatenate(est), signals / scale[:, None, None]


class _Loaded:
    """What both kinds share: the card, the device, the weights' path (None for a random-init model)."""

    input_kind = "signal"

    def __init__(self, task: Task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None):
        self.task, self.card, self.device, self.weights_path = task.eval().to(device), card, device, weights_path

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.card.get("recipe", "model"))

    def _random_card(self, architecture: str, seed: int) -> dict[str, Any]:
        return {**self.card, "name": f"random-init {architecture}", "seed": seed, "random_init": True}

    def eval_extras(self) -> dict[str, Any]:
        return {}


@MODEL_KINDS.register("signal")
class SignalModel(_Loaded):
    """A loaded signal model. Inputs are tensors or arrays (B, leads, samples) in ``input_spec`` (use
    ``preprocess(record)`` for a raw ``ECGRecord``)."""

    input_kind = "signal"
    can_reconstruct = False

    def __init__(self, task: Task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None):
        super().__init__(task, card, device, weights_path)
        self.input_spec = task.ecg.input_spec

    @property
    def has_joint_space(self) -> bool:
        return self.task.ecg_proj is not None

    @property
    def embed_dim(self) -> int:
        return int(self.task.ecg.embed_dim)

    def preprocess(self, record):
        """A raw record -> the encoder's input array (leads, samples)."""
        return self.input_spec.preprocess()(record).signal

    def features(self, signals, batch_size: int = 256) -> np.ndarray:
        """Pooled encoder features (B, embed_dim): what linear probes use."""
        return self._batched(self.task.features, signals, batch_size)

    def encode_ecg(self, signals, batch_size: int = 256) -> np.ndarray:
        """L2-normalised ECG embeddings in the joint ECG-text space (B, proj_dim)."""
        return self._batched(self.task.encode_ecg, signals, batch_size)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings in the joint space (B, proj_dim)."""
        return self.task.encode_text(list(texts)).float().cpu().numpy()

    def _batched(self, fn, signals, batch_size: int) -> np.ndarray:
        x = _as_float_tensor(signals)
        if x.ndim == 2:
            x = x[None]
        x = x.to(self.device)
        self.task.ecg.check_input(x)
        with torch.inference_mode():
            return torch.cat([fn(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]).numpy()

    def trainable_encoder(self) -> torch.nn.Module:
        """A trainable CPU copy of the signal encoder (pooled output (B, embed_dim)): what fine-tuning trains."""
        return copy.deepcopy(self.task.ecg).cpu().train().requires_grad_(True)

    def random_init(self, seed: int = 0) -> SignalModel:
        name = self.card.get("encoder", {}).get("name", self.task.recipe.model.encoder)
        return SignalModel(seeded_fresh_copy(self.task, seed), self._random_card(name, seed), self.device, None)

    def supervised_reference(self) -> tuple[str, dict[str, Any]] | None:
        config = dict(self.task.ecg.config)
        return config.pop("name"), config

    def recover_signals(self, signals, batch_size: int = 32):
        raise NotApplicableError("a signal model recovers no signal from printouts")

    def cache_identity(self) -> dict[str, Any]:
        return {"kind": self.input_kind}


@MODEL_KINDS.register("image")
class ImageModel(_Loaded):
    """A loaded ECG-Scan model: ``encode_image`` / ``image_features`` / ``reconstruct`` take printout images:
    (B, 3, H, W) at the trained size (float in [0, 1] or uint8), or image files, PIL images or arrays of any size
    (letterboxed to the trained size, see ``images``); ``render(signals_mv)`` draws printouts the
    way training did; a model trained with ``image.ink`` reads every image as its ink map (``images``). ``features`` / ``encode_ecg`` take ECGs as millivolt signals in ``input_spec`` and
    render them first (with ``eval_augment``: "none", "light" or "heavy"), so every evaluation protocol runs
    on images unchanged. ``encode_text`` uses the teacher's frozen text encoder and the trained projector."""

    input_kind = "image"
    has_joint_space = True

    def __init__(self, task: Task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None,
                 text_encoder=None):
        super().__init__(task, card, device, weights_path)
        self.input_spec = task.recipe.input_spec()
        self.image_size = (task.recipe.image.height, task.recipe.image.width)
        self.ink = bool(task.recipe.image.ink)
        self.eval_augment = "none"
        # align_rows: image files / PIL / arrays get their rows moved to the renderer's baselines first
        # (ecgalign.render.digitize.rows); row_alignment counts what happened to them
        self.align_rows = False
        self.layout = str(task.recipe.image.layout)
        self.row_alignment: dict[str, Any] = {"aligned": 0, "unchanged": 0, "unchanged_examples": []}
        self._row_plans: dict[tuple, Any] = {}  # (file, mtime, size) -> its RowAlignment
        self._text = text_encoder
        self._rendered = 0  # images rendered so far: the seed of the next augmented one

    @property
    def embed_dim(self) -> int:
        return int(self.task.image.embed_dim)

    @property
    def can_reconstruct(self) -> bool:
        return self.task.decoder is not None

    def render(self, signals, augment: str | None = None) -> torch.Tensor:
        """Printouts (B, 3, H, W) float in [0, 1] of millivolt signals (B, 12, T) at ``input_spec.fs``, as the
        encoder reads them (with ``image.ink``: their ink maps)."""
        x = _as_float_tensor(signals)
        x = x.to(self.device).reshape(-1, *x.shape[-2:])
        seeds = list(range(self._rendered, self._rendered + len(x)))
        self._rendered += len(x)
        with torch.inference_mode():  # the training page (at print resolution and resized, with image.print_dpi)
            return self.task.render_pages(x.float(), augment or self.eval_augment, seeds)

    def features(self, signals, batch_size: int = 64) -> np.ndarray:
        """Image-encoder features of the printouts of ``signals`` (mV)."""
        return np.concatenate([self.image_features(self.render(signals[i:i + batch_size]), batch_size, prepared=True)
                               for i in range(0, len(signals), batch_size)])

    def encode_ecg(self, signals, batch_size: int = 64) -> np.ndarray:
        """Shared-space embeddings of the printouts of ``signals`` (mV)."""
        return np.concatenate([self.encode_image(self.render(signals[i:i + batch_size]), batch_size, prepared=True)
                               for i in range(0, len(signals), batch_size)])

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings in the shared space (teacher text encoder + trained projector)."""
        if self._text is None:
            self._text = TextEncoder(self.card.get("text_encoder")).to(self.device)
        with torch.inference_mode():
            z = self.task.text_proj(self._text(list(texts)).to(self.device))
            return torch.nn.functional.normalize(z, dim=-1).float().cpu().numpy()

    def _page(self, image):
        """``image`` with its rows moved to the renderer's baselines when ``align_rows`` is set (counted in
        ``row_alignment``, a file once however often it is read), else as given."""
        if not self.align_rows:
            return image
        from ecgalign.render.digitize.rows import apply_plan, plan_rows

        rgb = read_image(image, name=_name(image))
        key = _file_key(image)
        info = self._row_plans.get(key) if key is not None else None
        if info is None:  # the digitiser runs once per file; features, embeddings, reconstruction and the
            # random-init twin (which shares the plans) reuse its plan
            info = plan_rows(rgb, self.layout, name=_name(image) or "image")
            if key is not None:
                self._row_plans[key] = info
            self.row_alignment[info.status] += 1
            if info.status != "aligned" and len(self.row_alignment["unchanged_examples"]) < 20:
                self.row_alignment["unchanged_examples"].append(f"{_name(image) or 'image'}: {info.reason}")
        return apply_plan(rgb, info)

    def images(self, images) -> torch.Tensor:
        """(B, 3, H, W) at the trained size from: a (B, 3, H, W) or (3, H, W) tensor / array already at that size
        (float in [0, 1] or uint8, passed through), or one image or a list of images of any size, each a path
        (PNG, JPEG, ...), a PIL image or an array, letterboxed onto white paper (``ecgalign.render.image_tensor``,
        which refuses images above its pixel budget before decoding them). A model trained with ``image.ink``
        takes every image as a page and reads its ink map (``ecgalign.render.ink_images``), tensors at the trained
        size included: pass pages, not ink maps (``render`` gives what the encoder reads). With ``align_rows``
        set, every image of another size (a page) first has its rows moved to where the renderer draws them
        (``ecgalign.render.digitize.rows.align_rows``; a page the digitiser cannot place is used unchanged and
        counted in ``row_alignment``); tensors at the trained size are taken as already prepared."""
        if isinstance(images, (str, Path)) or hasattr(images, "convert"):
            images = [images]
        if isinstance(images, (list, tuple)):
            return torch.stack([image_tensor(self._page(im), self.image_size, ink=self.ink, name=_name(im))
                                for im in images])
        x = torch.as_tensor(images)
        if x.ndim == 3 and x.shape[0] == 3:
            x = x[None]
        if x.ndim == 4 and x.shape[1] == 3 and tuple(x.shape[-2:]) == self.image_size:
            if not self.ink:
                return x
            return ink_images(x.float() / 255.0 if x.dtype == torch.uint8 else x.float(), self.image_size)
        if x.ndim == 4 and x.shape[1] == 3:  # a batch at another size: letterbox each
            return torch.stack([image_tensor(self._page(im), self.image_size, ink=self.ink) for im in x])
        return image_tensor(self._page(x), self.image_size, ink=self.ink)[None]  # one (H, W[, C]) array

    def _batched(self, fn, images, batch_size: int, prepared: bool) -> np.ndarray:
        x = images if prepared else self.images(images)
        with torch.inference_mode():
            return torch.cat([fn(x[i:i + batch_size].to(self.device)).float().cpu()
                              for i in range(0, len(x), batch_size)]).numpy()

    def encode_image(self, images, batch_size: int = 64, prepared: bool = False) -> np.ndarray:
        """L2-normalised image embeddings in the shared (teacher signal) space. ``prepared=True``: ``images`` are
        already encoder inputs (B, 3, H, W) from ``images`` or ``render``, used as they are."""
        return self._batched(self.task.encode_image, images, batch_size, prepared)

    def image_features(self, images, batch_size: int = 64, prepared: bool = False) -> np.ndarray:
        """Pooled image-encoder features: what linear probes use (``prepared`` as in ``encode_image``)."""
        return self._batched(self.task.image_features, images, batch_size, prepared)

    def reconstruct(self, images, batch_size: int = 64, prepared: bool = False) -> np.ndarray:
        """Reconstructed 12-lead signals (in units of the record's standard deviation; ``prepared`` as in
        ``encode_image``)."""
        return self._batched(self.task.reconstruct, images, batch_size, prepared)

    def recover_signals(self, signals, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """The decoder's reconstruction from each record's printout, and the record in the same units (the
        signal over its record-wide standard deviation: the training target)."""
        if not self.can_reconstruct:
            raise NotApplicableError("the image model was trained without the signal decoder")
        return recover_from_printouts(self.render, lambda x, b: self.reconstruct(x, b, prepared=True), signals,
                                      batch_size)

    def random_init(self, seed: int = 0) -> ImageModel:
        card = self._random_card(self.task.recipe.image.encoder, seed)
        baseline = ImageModel(seeded_fresh_copy(self.task, seed), card, self.device, None, text_encoder=self._text)
        baseline.eval_augment = self.eval_augment
        baseline.align_rows = self.align_rows
        baseline._row_plans = self._row_plans  # the same files: the same rows
        return baseline

    def supervised_reference(self) -> tuple[str, dict[str, Any]] | None:
        return None  # it reads printouts: a supervised signal model is no reference for it

    def cache_identity(self) -> dict[str, Any]:
        identity = {"kind": self.input_kind, "augment": self.eval_augment}
        if self.align_rows:  # only when set, so caches of unaligned embeddings stay valid
            from ecgalign.render.digitize.rows import ALIGNMENT_VERSION

            identity["align_rows"] = ALIGNMENT_VERSION
        return identity
