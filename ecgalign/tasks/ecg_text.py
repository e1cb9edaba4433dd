"""ECG-text pretraining: MERIT, MERIT-IB, ESI, CLIP (MERL-like) and MAE (ST-MEM-like) as loss weights of one
task.

Batch contract (``ecgalign.data.datasets.ECGDataset``): ``ecg`` float32 (B, leads, samples) already in the
encoder's input spec; ``report`` list[str] of B reports (needed when a text objective is on); ``index``;
optionally ``ecg_unpaired`` (B2, leads, samples) of signal-only records, used by the reconstruction term.

Forward pass:
- reconstruction on (MERIT, MAE): the ViT sees a masked signal; the pooled *visible* tokens are the ECG
  embedding for the contrastive term (MERIT section 3.3) and the masked-patch decoder reconstructs the rest;
- otherwise the whole signal is encoded and pooled.
The ECG and text embeddings pass through linear projection heads into a shared space of ``proj_dim``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgalign.data.errors import InputError
from ecgalign.data.texts import record_texts
from ecgalign.losses import ClipLoss, caption_loss, ib_cosine_penalty, masked_mse
from ecgalign.models.decoders import CaptionDecoder
from ecgalign.models.encoders.ecg.base import ECGEncoder, create_encoder
from ecgalign.models.encoders.ecg.vit1d import MaskedPatchDecoder
from ecgalign.models.encoders.text import TextEncoder
from ecgalign.recipes.schema import Recipe
from ecgalign.tasks.base import Task, register_task


@register_task("ecg-text")
class ECGTextTask(Task):
    family = "ecgalign.ecg-text"
    input_kind = "signal"
    loss_terms = ("contrastive", "reconstruction", "ib", "caption")
    takes_unpaired = True  # signal-only records join the reconstruction term

    def __init__(self, recipe: Recipe, text_encoder: nn.Module | None = None,
                 caption_vocab: list[str] | int | None = None):
        """``caption_vocab``: the training reports, whose token ids become the caption decoder's compact
        vocabulary (``model.caption_vocab: corpus``), or its size when the ids come with loaded weights."""
        super().__init__(recipe)
        objective, model_cfg = recipe.objective, recipe.model
        self.ecg: ECGEncoder = create_encoder(model_cfg.encoder, input_spec=recipe.input_spec(), **model_cfg.encoder_kwargs)
        dim = self.ecg.embed_dim
        self.decoder: nn.Module | None = None
        if objective.reconstruction > 0:
            if not self.ecg.supports_masking:
                raise InputError(f"recipe {recipe.name!r}: objective.reconstruction needs an encoder with a masked-"
                                 f"modelling path (vit1d_*); {model_cfg.encoder!r} has none")
            self.decoder = MaskedPatchDecoder.for_encoder(self.ecg, **model_cfg.decoder)
        self.text: nn.Module | None = None
        self.ecg_proj: nn.Module | None = None
        self.text_proj: nn.Module | None = None
        self.captioner: nn.Module | None = None
        if objective.needs_text:
            if text_encoder is None:
                text_encoder = TextEncoder(model_cfg.text_encoder, trainable=model_cfg.text_trainable,
                                           max_length=model_cfg.text_max_length)
            self.text = text_encoder
            self.ecg_proj = nn.Linear(dim, model_cfg.proj_dim)
            self.text_proj = nn.Linear(text_encoder.embed_dim, model_cfg.proj_dim)
            self.clip = ClipLoss(objective.temperature, objective.learnable_temperature, objective.label_smoothing)
            if objective.caption > 0:
                vocab = caption_vocab
                if isinstance(vocab, list):  # distinct reports, tokenised in chunks (a large corpus)
                    unique, seen = sorted(set(vocab)), set()
                    for i in range(0, len(unique), 4096):
                        seen.update(text_encoder.tokenize(unique[i:i + 4096])["input_ids"].flatten().tolist())
                    vocab = sorted(seen)
                self.captioner = CaptionDecoder(dim, text_encoder.vocab_size, max_length=model_cfg.text_max_length,
                                                pad_id=text_encoder.pad_id, vocab_ids=vocab, **model_cfg.captioner)

    # --------------------------------------------------------------------------------------- training
    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms and their weighted sum ``loss``; ``generator`` seeds the masks."""
        objective = self.recipe.objective
        x = batch["ecg"]  # (B, L, T)
        out: dict[str, torch.Tensor] = {}
        if self.decoder is not None:
            # signal-only records (``ecg_unpaired``, e.g. unlabeled real ECGs) join the reconstruction only
            x_all = torch.cat([x, batch["ecg_unpaired"]]) if "ecg_unpaired" in batch else x
            masked = self.ecg.forward_masked(x_all, objective.mask_ratio, generator=generator)
            tokens = masked.visible[: x.shape[0]]  # (B, Nv, D) of the paired records
            pred = self.decoder(masked.visible, masked.ids_restore, self.ecg.num_leads, self.ecg.num_patches)  # (B', L, P, patch)
            out["reconstruction"] = masked_mse(pred, self.ecg.patchify(x_all), masked.mask, objective.normalize_patches)
        else:
            tokens = self.ecg.forward_features(x)  # (B, N, D)
        if self.text is not None:
            reports = list(batch["report"])
            empty = [i for i, r in enumerate(reports) if not r]
            if empty:
                raise ValueError(f"recipe {self.recipe.name!r} needs a report for every record; batch records "
                                 f"{[int(batch['index'][i]) for i in empty[:5]]} have none")
            z_ecg = self.ecg_proj(self.ecg.pool(tokens))
            z_text = self.text_proj(self.text(reports).to(z_ecg.dtype))
            if objective.contrastive > 0:
                clip = self.clip(z_ecg, z_text)
                out["contrastive"] = clip["loss"]
                out["acc_ecg2text"], out["acc_text2ecg"] = clip["acc_a2b"], clip["acc_b2a"]
                out["logit_scale"] = clip["logit_scale"]
            if objective.ib > 0:
                out["ib"] = ib_cosine_penalty(z_ecg, z_text)
            if self.captioner is not None:
                ids = self.text.tokenize(reports, x.device)["input_ids"]
                logits = self.captioner(tokens, ids)
                cap = caption_loss(logits, self.captioner.targets(ids), self.captioner.pad_index)
                out["caption"], out["caption_token_acc"] = cap["loss"], cap["token_acc"]
        out["loss"] = self.weighted_sum(out)
        return out

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features (B, D): the representation linear probes are trained on."""
        return self.ecg(x)

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """ECG embeddings in the joint ECG-text space (B, proj_dim), L2-normalised by default."""
        if self.ecg_proj is None:
            raise InputError(f"recipe {self.recipe.name!r} has no text objective, so no joint space; use features()")
        z = self.ecg_proj(self.ecg(x))
        return nn.functional.normalize(z, dim=-1) if normalize else z

    @torch.no_grad()
    def encode_text(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        if self.text is None or self.text_proj is None:
            raise ValueError(f"recipe {self.recipe.name!r} has no text encoder")
        z = self.text_proj(self.text(list(texts)))
        return nn.functional.normalize(z, dim=-1) if normalize else z

    # --------------------------------------------------------------------------------------- building
    @classmethod
    def reads_reports(cls, recipe: Recipe) -> bool:
        return recipe.objective.needs_text

    @classmethod
    def unpaired_problem(cls, recipe: Recipe) -> str | None:
        if recipe.objective.reconstruction <= 0:
            return ("--unpaired signals are used by the reconstruction term, which this recipe does not have "
                    "(objective.reconstruction = 0)")
        return None

    @classmethod
    def for_training(cls, recipe: Recipe, store, context: dict[str, Any]) -> ECGTextTask:
        texts = record_texts(store, recipe.data.text_field) if recipe.objective.needs_text else None
        corpus = texts if recipe.objective.caption > 0 and recipe.model.caption_vocab == "corpus" else None
        task = cls(recipe, caption_vocab=corpus)
        if texts is not None and task.text is not None and hasattr(task.text, "prime_on_first_use"):
            # a frozen encoder embeds the whole corpus at the first step, in a fixed order: its embeddings then do
            # not depend on which batches came first, and a resumed run is exact
            task.text.prime_on_first_use(texts)
        return task

    @classmethod
    def from_saved(cls, recipe: Recipe, state: dict[str, torch.Tensor], card: dict[str, Any]) -> ECGTextTask:
        vocab = state.get("captioner.vocab_ids")
        task = cls(recipe, caption_vocab=None if vocab is None else len(vocab))
        task.load_saved_state(state)
        return task

    def fresh_copy(self) -> ECGTextTask:
        captioner = self.captioner
        compact = captioner is not None and captioner.compact
        task = type(self)(self.recipe, text_encoder=self.text,
                          caption_vocab=len(captioner.vocab_ids) if compact else None)
        if compact:  # the same compact vocabulary, fresh weights
            task.captioner.vocab_ids.copy_(captioner.vocab_ids)
            task.captioner.pad_index = captioner.pad_index
        return task

    def card_fields(self) -> dict[str, Any]:
        """What the model card says about this task's model."""
        return {"encoder": self.ecg.config, "embed_dim": self.ecg.embed_dim, "input_spec": self.ecg.input_spec.to_dict(),
                "text_encoder": None if self.text is None else {"source": self.text.source, "trainable": self.text.trainable},
                "proj_dim": None if self.ecg_proj is None else self.recipe.model.proj_dim}

    def saved_state(self) -> dict[str, torch.Tensor]:
        """Everything to checkpoint: all weights except a frozen text encoder's (it is named in the config)."""
        state = self.state_dict()
        if self.text is not None and not getattr(self.text, "trainable", True):
            state = {k: v for k, v in state.items() if not k.startswith("text.")}
        return state

    def _frozen_key(self, key: str) -> bool:
        return self.text is not None and not getattr(self.text, "trainable", True) and key.startswith("text.")
