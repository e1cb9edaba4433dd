"""Drawing primitives and trace quality: traces on ink, connected at steep slopes; a calibrated grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from ecgalign.render import RenderConfig, Renderer
from ecgalign.render.draw import GRID_SCHEMES, GlyphAtlas, Polylines, composite, grid_alpha, rasterize


def _line(points) -> Polylines:
    xy = torch.tensor(points, dtype=torch.float32)
    n = xy.shape[0]
    return Polylines(xy, torch.zeros(n, dtype=torch.long), torch.ones(n - 1, dtype=torch.bool))


def _coverage(lines: Polylines, width_px: float, h: int = 60, w: int = 80) -> torch.Tensor:
    flat, alpha = rasterize(lines, width_px, h, w)
    out = torch.zeros(h * w)
    out.scatter_reduce_(0, flat, alpha, "amax")
    return out.view(h, w)


def test_segments_cover_the_expected_pixels():
    horizontal = _coverage(_line([(10.0, 20.0), (50.0, 20.0)]), 1.0)
    assert torch.all(horizontal[20, 10:50] == 1) and horizontal[19].sum() == 0 and horizontal[21].sum() == 0
    vertical = _coverage(_line([(30.0, 5.0), (30.0, 45.0)]), 3.0)
    assert torch.all(vertical[5:45, 29:32] == 1) and vertical[:, 28].sum() == 0 and vertical[:, 32].sum() == 0


@pytest.mark.parametrize("angle", [0.0, 20.0, 45.0, 70.0, 89.0])
def test_anti_aliased_ink_equals_line_area(angle):
    """Box-filtered coverage: the ink of a long straight line is its length times its width."""
    a = math.radians(angle)
    length, width = 40.0, 2.0
    x0, y0 = 20.3, 10.7
    cov = _coverage(_line([(x0, y0), (x0 + length * math.cos(a), y0 + length * math.sin(a))]), width, 80, 80)
    assert float(cov.sum()) == pytest.approx(length * width, rel=0.08)


def test_nan_points_break_the_line():
    xy = torch.tensor(
        [[[[5.0, 10.0], [20.0, 10.0], [float("nan"), float("nan")], [30.0, 10.0], [45.0, 10.0]]]]
    )
    cov = _coverage(Polylines.from_batch(xy), 1.0)
    assert cov[10, 5:20].min() == 1 and cov[10, 21:30].sum() == 0 and cov[10, 30:45].min() == 1


@pytest.mark.parametrize("points", [[[70.0, 20.0], [80.4, 25.0]], [[78.0, 59.0], [81.0, 61.0]],
                                    [[-0.6, 30.0], [10.0, 30.0]], [[40.0, -3.0], [40.5, 5.0]]])
def test_strokes_ending_at_or_past_the_edge_stay_inside_their_image(points):
    # a wide stroke's square cap past the right edge used to wrap into the next row, and past the last
    # image's last row out of the canvas (an IndexError in training with the wild preset's handwriting)
    h, w = 60, 80
    flat, alpha = rasterize(_line(points), 4.0, h, w)
    assert flat.numel() > 0 and int(flat.min()) >= 0 and int(flat.max()) < h * w
    cols = (flat % w).numpy()
    x0, x1 = sorted(p[0] for p in points)
    assert cols.min() >= math.floor(x0) - 3 and cols.max() <= math.ceil(x1) + 3  # no wrap to the far side


def _spiky(fs: float, n: int) -> torch.Tensor:
    """Steeper than any ECG: 3 mV spikes two samples wide, a -2 mV square wave, a 50 Hz-ish zigzag."""
    t = torch.arange(n) / fs
    x = torch.zeros(12, n)
    x[:, (torch.arange(n) % int(fs / 2)) < 2] = 3.0
    x[1::2] += torch.where((t * 3).floor() % 2 == 0, -2.0, 0.0)
    x[2::3] += 0.4 * torch.sin(2 * math.pi * 45 * t)
    return x


def _components(mask: np.ndarray):
    return ndimage.label(mask, structure=np.ones((3, 3)))


@pytest.mark.parametrize("fs,trace_mm,dpi", [(500.0, 0.25, None), (100.0, 0.25, None), (500.0, 0.1, 100.0)])
def test_trace_on_ink_and_connected(fs, trace_mm, dpi, ink):
    n = int(10 * fs)
    width, height = (2200, 1700) if dpi is None else (1100, 850)
    res = Renderer(RenderConfig(width=width, height=height, dpi=dpi, trace_mm=trace_mm)).render(
        _spiky(fs, n), fs
    )
    mask = ink(res.images[0], threshold=200)
    labels, _ = _components(mask)
    for k, p in enumerate(res.page.panels):
        t = res.traces[k][0].numpy()
        cols, rows = np.round(t[:, 0]).astype(int), np.round(t[:, 1]).astype(int)
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        on_ink = mask[rows[inside], cols[inside]]
        assert on_ink.mean() > 0.99, f"{p.lead}: {1 - on_ink.mean():.2%} of samples off the ink"
        ids = labels[rows[inside], cols[inside]]
        ids = ids[ids > 0]
        # one connected stroke per panel (the calibration pulse / separator may join it, nothing splits it)
        assert len(np.unique(ids)) == 1, f"{p.lead}: trace split into {len(np.unique(ids))} pieces"


def test_grid_lines_every_millimetre_and_major_every_five():
    mm = 200 / 25.4
    origin = (10 * mm, 12 * mm)
    alpha = grid_alpha(2200, 1700, mm, origin, "red")
    col_profile = alpha[int(1700 / 2) + 3].numpy()  # a row away from horizontal lines
    for k in range(20):
        x = origin[0] + k * mm
        i = round(x)
        assert col_profile[i - 1 : i + 2].sum() > 0.25, k
        between = round(x + mm / 2)
        assert col_profile[between] < 0.05
    major = [col_profile[round(origin[0] + k * mm)] for k in range(30)]
    assert min(major[::5]) > max(m for i, m in enumerate(major) if i % 5)
    assert GRID_SCHEMES["none"][2] == 0 and grid_alpha(100, 80, mm, origin, "none").sum() == 0


def test_composite_keeps_the_darkest_overlap_and_leaves_scratch_zero():
    canvas = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    scratch = torch.zeros(16)
    flat = torch.tensor([5, 5, 6])
    composite(canvas, flat, torch.tensor([0.25, 1.0, 0.5]), torch.tensor([0.0, 0.0, 0.0]), scratch)
    assert canvas[0, :, 1, 1].tolist() == [0, 0, 0] and canvas[0, :, 1, 2].tolist() == [100, 100, 100]
    assert scratch.abs().sum() == 0
    composite(
        canvas,
        torch.tensor([0, 0]),
        torch.tensor([0.6, 0.6]),
        torch.tensor([0.0, 0.0, 0.0]),
        scratch,
        reduce="sum",
    )
    assert canvas[0, 0, 0, 0] == 0


def test_glyphs_render_readable_labels(ink):
    atlas = GlyphAtlas(24)
    img, xy, alpha = atlas.points([(0, 5.0, 5.0, "aVR"), (0, 5.0, 40.0, "V6")])
    assert img.shape[0] == xy.shape[0] == alpha.shape[0] > 50
    assert atlas.text_width("aVR") > atlas.text_width("I")
    res = Renderer(RenderConfig(width=1100, height=850)).render(torch.zeros(12, 5000), 500.0)
    gt = res.ground_truth(0)
    mask = ink(res.images[0])
    for p in gt.panels:
        x0, y0, x1, y1 = (round(v) for v in p["label_bbox_px"])
        assert mask[y0:y1, x0:x1].sum() > 5, p["lead"]
