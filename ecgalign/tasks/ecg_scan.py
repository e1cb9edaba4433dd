"""ECG-Scan (000_290557cf3ffea0eb): an ECG image encoder trained on printouts rendered online from each
batch, with the signal and the report as privileged supervision.

Batch contract: ``ecg`` float32 (B, 12, T) in millivolts at ``recipe.data.fs`` (what the renderer draws and
the decoder reconstructs); ``teacher_signal`` (B, P) the frozen teacher's L2-normalised joint-space ECG
embedding of the record; ``teacher_text`` (B, Dt) the frozen text encoder's embedding of its report. Both
teacher arrays are computed once per store (``ecgalign.train.teacher``) and read with the batch.

Spaces (paper appendix A.1): the shared space is the teacher's signal space (P dims); two Linear + Tanh
projectors map the image embedding into it (contrastive) and into the reconstruction latent; a Linear +
Tanh projector maps the text embedding into it. The reconstruction target is the signal divided by its
record-wide standard deviation, one scale for all leads, so the limb-lead laws still hold for it (per-lead
z-scores would break them).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgalign.data.errors import InputError
from ecgalign.losses import ClipLoss, gram_loss, lead_consistency_loss
from ecgalign.models.decoders import QuerySignalDecoder
from ecgalign.models.encoders.image import create_image_encoder
from ecgalign.recipes.schema import Recipe
from ecgalign.render import RenderConfig, Renderer, fit_images, ink_images, sample_wild_config
from ecgalign.render.wild import WILD_ROWS
from ecgalign.tasks.base import Task, register_task


WILD_GROUP = 8  # images per page convention in a `wild` batch (a renderer per convention costs ~25 ms)


def _n_groups(n: int) -> int:
    """Groups of ``WILD_GROUP`` images in a batch of ``n`` (the last one may be short)."""
    return -(-n // WILD_GROUP)


def _tanh_projector(d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.Tanh())


@register_task("ecg-scan")
class ECGScanTask(Task):
    family = "ecgalign.ecg-scan"
    input_kind = "image"
    loss_terms = ("contrastive", "gram", "reconstruction", "lead_consistency")
    needs_teacher = True

    def __init__(self, recipe: Recipe, signal_dim: int, text_dim: int):
        super().__init__(recipe)
        o, img, d = recipe.objective, recipe.image, recipe.data
        self.image = create_image_encoder(img.encoder, image_size=(img.height, img.width), **img.encoder_kwargs)
        dim = self.image.embed_dim
        self.signal_dim, self.text_dim = signal_dim, text_dim
        self.image_proj = _tanh_projector(dim, signal_dim)
        self.text_proj = _tanh_projector(text_dim, signal_dim)
        self.clip = ClipLoss(o.temperature, o.learnable_temperature, o.label_smoothing)
        self.gram_scale = ClipLoss(o.temperature, o.learnable_temperature, o.label_smoothing)  # its own temperature
        self.samples = int(round(d.fs * d.seconds))
        self.decoder = None
        self.latent_proj = None
        if o.reconstruction > 0:
            self.latent_proj = _tanh_projector(dim, img.latent_dim)
            self.decoder = QuerySignalDecoder(img.latent_dim, self.samples, leads=len(d.leads), **img.decoder)
        self.render_config = RenderConfig(layout=img.layout, width=img.width, height=img.height, grid=img.grid)
        self._renderer: Renderer | None = None
        self._print_renderer: tuple[float, Renderer] | None = None  # the last print-dpi page's (dpi, renderer)
        self.text_source: str | None = None  # the teacher's text encoder (set by the engine, saved in the card)

    def _render(self, x_mv: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        seeds = None if generator is None else torch.randint(0, 2**31 - 1, (len(x_mv),), generator=generator,
                                                           device=generator.device).tolist()
        augment = self.recipe.image.augment if self.training else "none"
        dpis = self._draw_dpis(len(x_mv), generator) if self.training else None
        with torch.no_grad(), torch.autocast(device_type=x_mv.device.type, enabled=False):  # pixels in float32
            if augment != "wild":
                return self.render_pages(x_mv.float(), augment, seeds if seeds is not None else 0, dpis)
            n_light = len(x_mv) - int(round(len(x_mv) * self.recipe.image.wild_share))
            wild = self._render_wild(x_mv[n_light:].float(), None if seeds is None else seeds[n_light:], generator)
            if n_light == 0:
                return wild
            light = self.render_pages(x_mv[:n_light].float(), "light", seeds[:n_light] if seeds is not None else 0,
                                      None if dpis is None else dpis[: _n_groups(n_light)])
            return torch.cat([light, wild])

    def _draw_dpis(self, n: int, generator: torch.Generator | None) -> list[float] | None:
        """One print dpi per group of ``WILD_GROUP`` images (``image.print_dpi``), drawn after the image seeds
        so that a recipe without it draws exactly what it drew before."""
        rng = self.recipe.image.print_dpi
        if rng is None:
            return None
        lo, hi = float(rng[0]), float(rng[1])
        u = (torch.rand(_n_groups(n), generator=generator, device=generator.device).tolist()
             if generator is not None else [0.5] * _n_groups(n))
        return [float(round(lo + (hi - lo) * v)) for v in u]

    def eval_dpi(self) -> float | None:
        """The dpi evaluation draws pages at (the midpoint of ``image.print_dpi``), None without it."""
        rng = self.recipe.image.print_dpi
        return None if rng is None else float(round((float(rng[0]) + float(rng[1])) / 2))

    def render_pages(self, x_mv: torch.Tensor, augment: str, seeds: list[int] | int,
                     dpis: list[float] | None = None) -> torch.Tensor:
        """Printouts (B, 3, H, W) in [0, 1] of millivolt signals on the recipe's page. Without ``dpis`` (and
        without ``image.print_dpi``) the page is drawn at (H, W). With them, each group of ``WILD_GROUP`` images is
        drawn as a US Letter page at its dpi and resized to (H, W) by ``to_input``, as an image file is; in
        evaluation (``dpis`` None) every page is drawn at ``eval_dpi()``."""
        fs = self.recipe.data.fs
        if dpis is None and self.recipe.image.print_dpi is not None:
            dpis = [self.eval_dpi()] * _n_groups(len(x_mv))
        if dpis is None:
            if self._renderer is None or str(self._renderer.device) != str(x_mv.device):
                self._renderer = Renderer(self.render_config, device=x_mv.device)
            return self.to_input(self._renderer.render(x_mv, fs, augment=augment, seed=seeds, output="float").images)
        out = []
        for g, dpi in enumerate(dpis):
            s, e = g * WILD_GROUP, min(len(x_mv), (g + 1) * WILD_GROUP)
            if s >= e:
                break
            page = self._print_page_renderer(dpi, x_mv.device).render(
                x_mv[s:e], fs, augment=augment, seed=seeds[s:e] if isinstance(seeds, list) else seeds, output="float")
            out.append(self.to_input(page.images))
        return torch.cat(out)

    def to_input(self, pages: torch.Tensor) -> torch.Tensor:
        """Drawn pages (B, 3, h, w) float in [0, 1] as the encoder reads them: resized to the recipe's size as an
        image file is (``fit_images``), or with ``image.ink`` their ink maps at that size (``ink_images``)."""
        size = (self.recipe.image.height, self.recipe.image.width)
        return ink_images(pages, size) if self.recipe.image.ink else fit_images(pages, size)

    def _print_page_renderer(self, dpi: float, device: torch.device) -> Renderer:
        """The renderer of the recipe's Letter page at ``dpi``, kept while the dpi stays (evaluation draws every
        page at one dpi; a fresh renderer's first page costs about a quarter more)."""
        kept = self._print_renderer
        if kept is None or kept[0] != dpi or str(kept[1].device) != str(device):
            img = self.recipe.image
            kept = (dpi, Renderer(RenderConfig.letter(dpi, layout=img.layout, grid=img.grid), device=device))
            self._print_renderer = kept
        return kept[1]

    def _render_wild(self, x_mv: torch.Tensor, seeds: list[int] | None,
                     generator: torch.Generator | None) -> torch.Tensor:
        """The ``wild`` preset: besides the scanner/photo artefacts, every group of ``WILD_GROUP`` images
        gets its own page conventions (``sample_wild_config`` at the training size: grid scheme and weight,
        frame, pulse, labels, legend, separators, line width and faintness, row pitch and position unless
        ``image.wild_rows=renderer``), so the encoder does not learn one printer's page geometry. With ``image.print_dpi`` the page is drawn at a dpi
        from that range (the config's own draw) and resized to the training size by ``to_input``."""
        img, b = self.recipe.image, len(x_mv)
        n_groups = _n_groups(b)
        page_seeds = ([0] * n_groups if generator is None else
                      torch.randint(0, 2**31 - 1, (n_groups,), generator=generator, device=generator.device).tolist())
        out = []
        for g, page_seed in enumerate(page_seeds):
            s, e = g * WILD_GROUP, min(b, (g + 1) * WILD_GROUP)
            if img.print_dpi is None:
                cfg = sample_wild_config(page_seed, layout=img.layout, size=(img.height, img.width),
                                         rows=img.wild_rows)
            else:
                dpi = (float(img.print_dpi[0]), float(img.print_dpi[1]))
                cfg = sample_wild_config(page_seed, layout=img.layout, dpi=dpi, rows=img.wild_rows)
            result = Renderer(cfg, device=x_mv.device).render(
                x_mv[s:e], self.recipe.data.fs, augment="wild",
                seed=seeds[s:e] if seeds is not None else 0, output="float")
            out.append(self.to_input(result.images))
        return torch.cat(out)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def validate_recipe(cls, recipe: Recipe) -> None:
        super().validate_recipe(recipe)
        o = recipe.objective
        share = recipe.image.wild_share
        if not 0.0 < share <= 1.0:
            raise InputError(f"recipe {recipe.name!r}: image.wild_share must be in (0, 1], got {share!r} "
                             "(for no wild pages set image.augment=light)")
        if recipe.image.wild_rows not in WILD_ROWS:
            raise InputError(f"recipe {recipe.name!r}: image.wild_rows must be one of {', '.join(WILD_ROWS)}, got "
                             f"{recipe.image.wild_rows!r}")
        if not isinstance(recipe.image.ink, bool):
            raise InputError(f"recipe {recipe.name!r}: image.ink must be true or false, got {recipe.image.ink!r}")
        dpi = recipe.image.print_dpi
        if dpi is not None:
            ok = (isinstance(dpi, (list, tuple)) and len(dpi) == 2
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dpi)
                  and 0 < float(dpi[0]) <= float(dpi[1]) <= 600)
            if not ok:
                raise InputError(f"recipe {recipe.name!r}: image.print_dpi must be null or [low, high] with "
                                 f"0 < low <= high <= 600 (dots per inch of the drawn page), got {dpi!r}")
            if 11 * float(dpi[0]) < recipe.image.width:
                raise InputError(f"recipe {recipe.name!r}: image.print_dpi low {dpi[0]} draws an 11-inch page "
                                 f"{11 * float(dpi[0]):.0f} px wide, narrower than image.width {recipe.image.width}; "
                                 "pages are drawn at print resolution and shrunk, never enlarged")
        if o.lead_consistency > 0 and o.reconstruction == 0:
            raise InputError(f"recipe {recipe.name!r}: lead consistency regularises the reconstruction; "
                             "set objective.reconstruction > 0")

    @classmethod
    def for_training(cls, recipe: Recipe, store, context: dict[str, Any]) -> ECGScanTask:
        task = cls(recipe, signal_dim=context["teacher_signal"].shape[1], text_dim=context["teacher_text"].shape[1])
        task.text_source = context["teacher_info"].get("text_encoder")  # the card names it: encode_text needs it
        return task

    @classmethod
    def from_saved(cls, recipe: Recipe, state: dict[str, torch.Tensor], card: dict[str, Any]) -> ECGScanTask:
        task = cls(recipe, signal_dim=state["image_proj.0.weight"].shape[0],
                   text_dim=state["text_proj.0.weight"].shape[1])
        task.load_saved_state(state)
        task.text_source = card.get("text_encoder")
        return task

    def fresh_copy(self) -> ECGScanTask:
        task = type(self)(self.recipe, signal_dim=self.signal_dim, text_dim=self.text_dim)
        task.text_source = self.text_source
        return task

    def card_fields(self) -> dict[str, Any]:
        img = self.recipe.image
        return {"encoder": self.image.config, "embed_dim": self.image.embed_dim, "signal_dim": self.signal_dim,
                "text_dim": self.text_dim, "image_size": [img.height, img.width], "layout": img.layout,
                "ink": img.ink, "teacher": img.teacher, "text_encoder": self.text_source,
                "input_spec": self.recipe.input_spec().to_dict()}

    @staticmethod
    def reconstruction_target(x_mv: torch.Tensor) -> torch.Tensor:
        """The signal over its record-wide standard deviation (one scale for all leads)."""
        scale = x_mv.flatten(1).std(dim=1).clamp(min=1e-3)
        return x_mv / scale[:, None, None]

    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        x = batch["ecg"]  # (B, 12, T) mV
        images = self._render(x, generator)
        h = self.image(images)  # (B, D)
        z_image = self.image_proj(h)
        z_signal = batch["teacher_signal"].to(z_image.dtype)
        z_text = self.text_proj(batch["teacher_text"].to(z_image.dtype))
        out: dict[str, torch.Tensor] = {}
        if self.weights["contrastive"] > 0:
            clip = self.clip(z_image, z_text)
            out["contrastive"], out["acc_image2text"] = clip["loss"], clip["acc_a2b"]
        if self.weights["gram"] > 0:
            gram = gram_loss(z_image, z_text, z_signal, self.gram_scale.logit_scale, self.recipe.objective.label_smoothing)
            out["gram"], out["gram_acc"], out["gram_volume"] = gram["loss"], gram["acc"], gram["mean_positive_volume"]
        if self.decoder is not None:
            target = self.reconstruction_target(x)
            recon = self.decoder(self.latent_proj(h), generator)
            out["reconstruction"] = (recon.float() - target).pow(2).mean()
            if self.weights["lead_consistency"] > 0:
                o = self.recipe.objective
                lead = lead_consistency_loss(recon, target, o.lead_alpha, o.lead_beta)
                out["lead_consistency"] = lead["loss"]
        out["loss"] = self.weighted_sum(out)
        return out

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image embeddings in the shared (teacher signal) space, (B, P)."""
        z = self.image_proj(self.image(images))
        return nn.functional.normalize(z, dim=-1) if normalize else z

    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled image-encoder features (B, D): what linear probes use."""
        return self.image(images)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise InputError(f"recipe {self.recipe.name!r} trains no signal decoder")
        return self.decoder(self.latent_proj(self.image(images)))
