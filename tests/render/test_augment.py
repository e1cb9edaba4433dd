"""Augmentations: geometric ones keep the ground truth on the drawn ink and grid; each one switches alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgalign.render import AUG_NAMES, AUGMENT_PRESETS, Augment, RenderConfig, Renderer
from ecgalign.render.augment import gaussian_blur, jpeg_like, sample_params

CFG = RenderConfig(width=1100, height=850, trace_mm=0.4)
GEOMETRIC = {
    "rotation": Augment(rotation=6.0),
    "crop_scale": Augment(crop_scale=0.15),
    "perspective": Augment(perspective=0.06),
    "all": Augment(rotation=4.0, crop_scale=0.1, perspective=0.05),
}


def _map(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    q = np.c_[points, np.ones(len(points))] @ m.T
    return q[:, :2] / q[:, 2:]


@pytest.mark.parametrize("name", list(GEOMETRIC))
def test_geometric_ground_truth_lands_on_the_drawn_ink(ecg, ink, name):
    signal, fs = ecg
    r = Renderer(CFG)
    res = r.render(signal, fs, augment=GEOMETRIC[name], seed=3)
    clean = r.render(signal, fs)
    m = res.page_to_image[0].numpy()
    assert not np.allclose(m, np.eye(3))
    mask = ink(res.images[0], threshold=200)
    h, w = mask.shape
    for k, p in enumerate(res.page.panels):
        t = res.traces[k][0].numpy()
        # the image trace is the clean trace mapped by the reported homography
        assert np.allclose(t, _map(clean.traces[k][0].numpy().astype(np.float64), m), atol=1e-2)
        c, rr = np.round(t[:, 0]).astype(int), np.round(t[:, 1]).astype(int)
        inside = (c >= 0) & (c < w) & (rr >= 0) & (rr < h)
        assert mask[rr[inside], c[inside]].mean() > 0.99, p.lead
        box = res.bboxes[0, k].numpy()
        assert box[0] <= t[inside, 0].min() and t[inside, 0].max() <= box[2]
    # calibration pulse corners (page geometry mapped by the same homography) are ink too
    corners = np.array([pt for line in res.page.calibration_polylines() for pt in line[1:5]])
    cc = np.round(_map(corners, m)).astype(int)
    ok = (cc[:, 0] >= 0) & (cc[:, 0] < w) & (cc[:, 1] >= 0) & (cc[:, 1] < h)
    near = [mask[y - 1 : y + 2, x - 1 : x + 2].any() for x, y in cc[ok]]
    assert np.mean(near) == 1.0


@pytest.mark.parametrize("name", ["rotation", "all"])
def test_warped_grid_matches_the_homography(ecg, name):
    """Major-line intersections of the page grid, mapped to the image, are grid-coloured (red) pixels."""
    signal, fs = ecg
    res = Renderer(CFG).render(signal * 0, fs, augment=GEOMETRIC[name], seed=5)
    page, m = res.page, res.page_to_image[0].numpy()
    img = res.images[0].int().numpy()
    ox, oy = page.grid_origin
    step = 5 * page.px_per_mm
    kx, ky = np.meshgrid(np.arange(-1, 50), np.arange(-2, 40))
    pts = np.c_[(ox + kx.ravel() * step), (oy + ky.ravel() * step)]
    pts = pts[
        (pts[:, 0] > 0) & (pts[:, 0] < page.width - 1) & (pts[:, 1] > 0) & (pts[:, 1] < page.height - 1)
    ]

    def redness(p):
        c = np.round(_map(p, m)).astype(int)
        ok = (c[:, 0] >= 0) & (c[:, 0] < img.shape[2]) & (c[:, 1] >= 0) & (c[:, 1] < img.shape[1])
        px = img[:, c[ok, 1], c[ok, 0]]
        return ((px[0] - px[1]) > 80).mean()

    assert redness(pts) > 0.9
    assert redness(pts + step / 2) < 0.3  # centres of the major squares are paper


@pytest.mark.parametrize("name", AUG_NAMES)
def test_each_augmentation_switches_on_alone(ecg, name):
    signal, fs = ecg
    r = Renderer(RenderConfig(width=550, height=425))
    clean = r.render(signal, fs).images
    strength = {
        "jpeg": 0.9,
        "photocopy": 1.0,
        "grid_colour": 1.0,
        "handwriting": 3.0,
        "rotation": 3.0,
        "noise": 10.0,
        "blur": 0.3,
    }.get(name, 0.3)
    res = r.render(signal, fs, augment=Augment(**{name: strength}), seed=1)
    assert res.augment_params.on[name].all()
    assert sum(bool(res.augment_params.on[o].any()) for o in AUG_NAMES) == 1
    diff = (res.images.float() - clean.float()).abs().mean()
    assert diff > 0.05, name
    assert res.ground_truth(0).augment["applied"] == [name]
    off = r.render(signal, fs, augment=Augment(**{name: strength, "prob": {name: 0.0}}), seed=1)
    assert torch.equal(off.images, clean)


def test_switching_one_augmentation_leaves_the_others_draws():
    a = sample_params(Augment(rotation=3, noise=5), [1, 2], 425, 550)
    b = sample_params(Augment(rotation=3, noise=5, colour=0.2), [1, 2], 425, 550)
    assert torch.equal(a.page_to_image, b.page_to_image) and torch.equal(a.noise_std, b.noise_std)


def test_presets():
    assert set(AUGMENT_PRESETS) == {"none", "light", "heavy", "wild"}
    assert not AUGMENT_PRESETS["none"].enabled and AUGMENT_PRESETS["light"].enabled
    light, heavy = AUGMENT_PRESETS["light"], AUGMENT_PRESETS["heavy"]
    assert all(getattr(heavy, n) >= getattr(light, n) for n in AUG_NAMES)
    assert Augment.from_dict(heavy.to_dict()) == heavy


def test_jpeg_like_quality_controls_the_error():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 1, 64, 80, generator=g) * 40 + 180).expand(1, 3, 64, 80).clone()  # grey: no chroma
    x[:, :, 20:40, 30:50] = 20.0  # an edge to ring around
    errors = [float((jpeg_like(x, torch.tensor([q])) - x).abs().mean()) for q in (100, 75, 10)]
    assert errors[0] < 1.0 and errors[0] < errors[1] < errors[2]
    assert jpeg_like(x[:, :, :61, :77], torch.tensor([50])).shape == (1, 3, 61, 77)  # padded to 16, cropped
    # red on white loses colour resolution (4:2:0): a 1-px red line bleeds into its neighbours
    y = torch.full((1, 3, 16, 16), 255.0)
    y[0, 1:, :, 7] = 0.0
    z = jpeg_like(y, torch.tensor([95]))
    assert float(z[0, 1, 5, 6]) < 230


def test_blur_spreads_a_line_and_keeps_its_ink():
    x = torch.zeros(1, 1, 31, 31)
    x[..., 15, :] = 100.0
    y = gaussian_blur(x, torch.tensor([2.0]))
    assert float(y[..., 15, 10]) < 40 and float(y[..., 13, 10]) > 10
    assert float(y[..., 10:21, 10].sum()) == pytest.approx(100.0, rel=0.01)


def test_photocopy_is_grey_and_handwriting_adds_pen_colour(ecg):
    signal, fs = ecg
    r = Renderer(RenderConfig(width=550, height=425))
    img = r.render(signal, fs, augment=Augment(photocopy=1.0), seed=0).images[0].int()
    assert (img[0] - img[1]).abs().max() <= 2 and (img[1] - img[2]).abs().max() <= 2
    res = r.render(signal, fs, augment=Augment(handwriting=6.0), seed=0)
    clean = r.render(signal, fs).images[0].int()
    new = (res.images[0].int() - clean).abs().sum(0) > 60
    assert int(new.sum()) > 100
