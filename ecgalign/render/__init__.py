"""ECG printout renderer: batched, seeded, torch (CPU or GPU), with exact pixel <-> sample ground truth.

    from ecgalign.render import Renderer, RenderConfig
    r = Renderer(RenderConfig(layout="3x4+II", width=2200, height=1700))   # 200 dpi US Letter landscape
    res = r.render(signals, fs=500, augment="light", seed=0)               # signals (B, 12, T) mV
    res.images                    # (B, 3, H, W) uint8 (output="float": float32 in [0, 1])
    res.ground_truth(0).to_json() # layout, panels, per-sample trace pixels, boxes, homography

Conventions: pixel centres at integer coordinates, x right, y down. On the page (before augmentation) sample
s of a panel is drawn at x = trace_x0 + s / fs * speed * px_per_mm and y = baseline - mV * gain * px_per_mm;
``page_to_image`` (3x3) maps page to image pixels (identity without geometric augmentation). See
docs/render.md.
"""

from ecgalign.render.augment import AUG_NAMES, AUGMENT_PRESETS, Augment
from ecgalign.render.draw import GRID_SCHEMES
from ecgalign.render.imagefile import ImageError, fit_images, image_tensor, ink_images, read_image
from ecgalign.render.io import render_records, save_png, write_render
from ecgalign.render.layout import LAYOUTS, Page, Panel, compute_page, list_layouts
from ecgalign.render.renderer import RenderConfig, Renderer, RenderResult, header_text, render_ecg
from ecgalign.render.truth import GroundTruth
from ecgalign.render.wild import sample_wild_config

__all__ = [
    "AUGMENT_PRESETS",
    "AUG_NAMES",
    "GRID_SCHEMES",
    "LAYOUTS",
    "Augment",
    "GroundTruth",
    "ImageError",
    "Page",
    "Panel",
    "RenderConfig",
    "RenderResult",
    "Renderer",
    "compute_page",
    "header_text",
    "fit_images",
    "image_tensor",
    "ink_images",
    "list_layouts",
    "read_image",
    "render_ecg",
    "render_records",
    "sample_wild_config",
    "save_png",
    "write_render",
]
