"""Page conventions of other printers and generators, drawn at random (issue 14: domain randomisation).

``augment="wild"`` (ecgalign.render.augment.AUGMENT_PRESETS) randomises scanner and photo artefacts per image
(rotation, perspective, blur, JPEG, noise, uneven light and shadows, creases, colour, photocopy, grid colour,
pen strokes). What a printer decides for a whole page is a ``RenderConfig`` (one template per renderer):
``sample_wild_config`` draws one, every convention on at random, for a training step or batch:

============== =====================================================================
resolution     100-300 dpi (US Letter: 1100 x 850 to 3300 x 2550 px)
page frame     a frame line along the image border (ecg-image-kit draws a 1-px one)
pulse          "lead-in" (flat before and after) or "flush" (ends where the trace starts), or none
lead labels    above or below the baseline; text size 2-4 mm; or none
legend         "25 mm/s 10 mm/mV" at the page foot or 5-15 mm under the last row; or none
grid           scheme (red, pink, blue, green, black-and-white, none) and line weight 0.6-2x
separators     column ticks on or off; trace line width 0.15-0.4 mm
row geometry   row pitch from 25 mm to the full page share, the row block anywhere from just under the
               header band to the footer (ecg-image-kit: ~35 mm rows in the lower 60 % of the page)
faint traces   at a training size (``size=``) the thinnest line 0.25-1 px, so the trace may be as faint as
               a high-resolution printout's after an antialiased downscale to that size
============== =====================================================================

    cfg = sample_wild_config(seed=step)
    res = Renderer(cfg).render(signals, fs, augment="wild", seed=step)
"""

from __future__ import annotations

import random
from dataclasses import replace

from ecgalign.render.draw import GRID_SCHEMES
from ecgalign.render.layout import FOOTER_MM, LAYOUTS
from ecgalign.render.renderer import RenderConfig

WILD_TOP_MM = 6.0  # the row block starts no higher than this (room for at least a one-line header)
WILD_ROWS = ("random", "renderer")  # row placement: drawn per page, or the renderer's default
GRID_WEIGHTS = {"red": 0.3, "pink": 0.2, "blue": 0.1, "green": 0.1, "bw": 0.2, "none": 0.1}


def sample_wild_config(
    seed: int,
    layout: str = "3x4+II",
    dpi: tuple[float, float] = (100.0, 300.0),
    size: tuple[int, int] | None = None,
    rows: str = "random",
) -> RenderConfig:
    """A random ``RenderConfig`` (US Letter landscape at a random dpi in ``dpi``) with every page convention
    of the table above drawn independently from ``seed`` (the same seed, the same config).

    ``size=(H, W)``: the page is that many pixels instead (an image encoder's training size; the page is
    still 11 in wide, so the dpi is W / 11), and its thinnest trace is drawn too (``min_trace_px``).

    ``rows="renderer"``: the rows stay where the renderer puts them by default (every other convention still
    drawn, and drawn the same as with ``"random"``): the pages an encoder sees when image files reach it through
    row alignment (``ecgalign.render.digitize.rows``)."""
    if rows not in WILD_ROWS:
        raise ValueError(f"rows must be one of {', '.join(WILD_ROWS)}, got {rows!r}")
    if not 0 < dpi[0] <= dpi[1]:
        raise ValueError(f"dpi must be a (low, high) range of positive numbers, got {dpi}")
    if size is not None and not (int(size[0]) >= 16 and int(size[1]) >= 16):
        raise ValueError(f"size must be (H, W) of at least 16 x 16 px, got {size}")
    rng = random.Random(int(seed))
    schemes = [s for s in GRID_WEIGHTS if s in GRID_SCHEMES]
    cfg = RenderConfig.letter(
        round(rng.uniform(*dpi)),
        layout=layout,
        grid=rng.choices(schemes, weights=[GRID_WEIGHTS[s] for s in schemes])[0],
        grid_weight=rng.uniform(0.6, 2.0),
        frame=rng.random() < 0.5,
        calibration=rng.random() < 0.85,
        pulse=rng.choice(("lead-in", "flush")),
        labels=rng.random() < 0.9,
        label_position=rng.choice(("above", "below")),
        text_mm=rng.uniform(2.0, 4.0),
        legend=rng.random() < 0.7,
        legend_gap_mm=None if rng.random() < 0.5 else rng.uniform(5.0, 15.0),
        separators=rng.random() < 0.7,
        trace_mm=rng.uniform(0.15, 0.4),
    )
    # drawn after the conventions above, so a seed keeps the conventions it drew before these existed
    if size is not None:
        cfg = replace(cfg, height=int(size[0]), width=int(size[1]), dpi=None)
    grid, strips = LAYOUTS[layout]
    n_rows = len(grid) + len(strips)
    page_h = cfg.height / cfg.px_per_mm
    room = page_h - FOOTER_MM - WILD_TOP_MM  # the height the rows may take
    pitch = rng.uniform(min(25.0, room / n_rows), room / n_rows)
    top = WILD_TOP_MM + rng.uniform(0.0, room - pitch * n_rows)
    faint = rng.uniform(0.25, 1.0)
    changes = {"row_pitch_mm": pitch, "rows_top_mm": top} if rows == "random" else {}
    if size is not None:
        changes["min_trace_px"] = faint
    return replace(cfg, **changes)
