"""Renderer behaviour: seeding, batching, missing leads, outputs, bad input, the accelerator paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecgalign.render import Augment, RenderConfig, Renderer, geometry

SMALL = RenderConfig(width=550, height=425)


def _batch(ecg, n=3):
    signal, fs = ecg
    return torch.stack([signal * (1 + 0.2 * k) for k in range(n)]), fs


@pytest.mark.parametrize("augment", ["none", "light", "heavy"])
def test_same_seed_same_image_other_seed_other_image(ecg, augment):
    x, fs = _batch(ecg, 2)
    r = Renderer(SMALL)
    a = r.render(x, fs, augment=augment, seed=7)
    b = Renderer(SMALL).render(x, fs, augment=augment, seed=7)
    assert torch.equal(a.images, b.images)
    assert a.ground_truth(1).to_json() == b.ground_truth(1).to_json()
    if augment != "none":
        c = r.render(x, fs, augment=augment, seed=8)
        assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("augment", ["none", "light", "heavy"])
def test_batch_renders_like_single_images(ecg, augment):
    x, fs = _batch(ecg, 3)
    r = Renderer(SMALL)
    header = [{"id": k, "age": 50 + k, "sex": "F"} for k in range(3)]
    batch = r.render(x, fs, augment=augment, seed=11, header=header)
    for i in range(3):
        one = r.render(x[i], fs, augment=augment, seed=[batch.seeds[i]], header=[header[i]])
        diff = (one.images[0].int() - batch.images[i].int()).abs()
        if augment == "heavy":  # JPEG / blur run on sub-batches: float sums may differ in the last bit
            assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
        else:
            assert diff.max() == 0
        assert torch.allclose(one.traces[3][0], batch.traces[3][i])
        assert torch.equal(one.page_to_image[0], batch.page_to_image[i])


def test_chunking_does_not_change_images(ecg):
    x, fs = _batch(ecg, 3)
    whole = Renderer(SMALL).render(x, fs, augment="light", seed=2)
    chunked = Renderer(SMALL, chunk_pixels=SMALL.width * SMALL.height).render(x, fs, augment="light", seed=2)
    assert torch.equal(whole.images, chunked.images)


def test_generator_seeds_and_explicit_seeds(ecg):
    x, fs = _batch(ecg, 2)
    r = Renderer(SMALL)
    a = r.render(x, fs, augment="light", generator=torch.Generator().manual_seed(3))
    b = r.render(x, fs, augment="light", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.images, b.images) and a.seeds == b.seeds
    with pytest.raises(ValueError, match="seeds"):
        r.render(x, fs, seed=[1, 2, 3])


def test_missing_leads_render_empty_and_are_reported(ecg, ink):
    signal, fs = ecg
    x = signal.clone()
    x[2] = float("nan")  # III
    x[7, :2500] = float("nan")  # V2: gone from its 3x4 window (5-7.5 s), kept nowhere else
    r = Renderer(RenderConfig(width=1100, height=850))
    res = r.render(x, fs)
    gt = res.ground_truth(0)
    missing = {(p["lead"], p["rhythm"]) for p in gt.panels if p["missing"]}
    assert missing == {("III", False)}
    iii = gt.panel("III")
    assert iii["bbox_px"] is None and np.isnan(iii["trace_y_px"]).all()
    assert [p["missing"] for p in json.loads(gt.to_json())["panels"] if p["lead"] == "III"] == [True]
    # the panel is empty: no ink between the label and the next column, around the baseline
    x0, _, x1, y1 = gt.panel("III")["cell_px"][0] + gt.panel("III")["cell_px"][2]
    mask = ink(res.images[0])
    label_bottom = int(gt.panel("III")["label_bbox_px"][3]) + 2
    assert mask[label_bottom : int(y1), int(x0) + 3 : int(x1) - 3].sum() == 0
    clean = r.render(signal, fs)
    assert mask.sum() < ink(clean.images[0]).sum()


def test_float_output_matches_uint8(ecg):
    signal, fs = ecg
    r = Renderer(SMALL)
    u8 = r.render(signal, fs).images
    f = r.render(signal, fs, output="float").images
    assert f.dtype == torch.float32 and 0 <= float(f.min()) and float(f.max()) <= 1
    assert torch.allclose(f * 255, u8.float(), atol=0.51)
    fl = r.render(signal, fs, output="float", augment="light", seed=1).images
    ul = r.render(signal, fs, augment="light", seed=1).images
    # the uint8 path rounds the page before the light augmentation's colour gain (contrast x channel gain <= 1.05^2)
    # and rounds the base: 0.5 x 1.1025 + 0.5 = 1.05 levels; where an antialiased trace is composited onto the
    # rounded canvas that error is scaled by (1 - alpha) and the composite rounds again: at most 1.55 levels under
    # one composited layer (each further overlapping layer could add up to 0.5; 1.12 seen on one pixel of synthetic
    # record 0, <= 1.02 on records 1-5). The mean stays at uniform rounding's 0.25: a real mismatch between the
    # paths would move it.
    diff = (fl * 255 - ul.float()).abs()
    assert diff.max() <= 1.55
    assert diff.mean() <= 0.3


def test_out_buffer_is_filled_and_checked(ecg):
    signal, fs = ecg
    r = Renderer(SMALL)
    out = torch.zeros(1, 3, SMALL.height, SMALL.width, dtype=torch.uint8)
    res = r.render(signal, fs, out=out)
    assert res.images.data_ptr() == out.data_ptr() and torch.equal(out, r.render(signal, fs).images)
    with pytest.raises(ValueError, match="out must be"):
        r.render(signal, fs, out=torch.zeros(1, 3, 10, 10, dtype=torch.uint8))


@pytest.mark.parametrize("bad", [torch.zeros(11, 5000), torch.zeros(2, 12), torch.zeros(1, 2, 12, 500)])
def test_wrong_signal_shape_names_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"\(B, 12, T\)"):
        Renderer(SMALL).render(bad, 500.0)


def test_other_bad_input():
    x = torch.zeros(12, 5000)
    r = Renderer(SMALL)
    with pytest.raises(ValueError, match="floating point"):
        r.render(torch.zeros(12, 5000, dtype=torch.int16), 500.0)
    with pytest.raises(ValueError, match="light, heavy"):
        r.render(x, 500.0, augment="medium")
    with pytest.raises(ValueError, match="headers"):
        r.render(x, 500.0, header=["a", "b"])
    with pytest.raises(ValueError, match="fs"):
        r.render(x, 0.0)
    with pytest.raises(ValueError, match="grid scheme"):
        RenderConfig(grid="purple")
    with pytest.raises(ValueError, match="must be a finite number"):
        Augment(rotation=-1)
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augment(prob={"wobble": 0.5})


def test_numpy_input_and_training_resolution(ecg):
    signal, fs = ecg
    res = Renderer(RenderConfig(width=448, height=352)).render(
        signal.numpy().astype(np.float64), fs, augment="light"
    )
    assert res.images.shape == (1, 3, 352, 448)
    assert res.page.px_per_mm == pytest.approx(448 / 11 / 25.4)
    assert res.config.trace_px == 1.0  # never thinner than a pixel


@pytest.mark.parametrize(
    "augment",
    ["light", Augment(rotation=3, perspective=0.03, illumination=0.3, creases=0.3, noise=5, colour=0.1)],
)
def test_batched_paths_match_the_cpu_paths(ecg, monkeypatch, augment):
    """What an accelerator runs (whole-chunk broadcasts, homography per pixel) against the CPU paths."""
    x, fs = _batch(ecg, 2)
    cpu = Renderer(SMALL).render(x, fs, augment=augment, seed=5).images.float()
    monkeypatch.setattr(geometry, "cpu_paths", lambda device: False)
    batched = Renderer(SMALL).render(x, fs, augment=augment, seed=5).images.float()
    diff = (cpu - batched).abs()
    # the CPU grid lookup rounds to 1/32 px in two steps, the per-pixel one in one: grid-line edges (at this
    # size most pixels are near a line) and the page border move by a fraction of a pixel
    assert float(diff.mean()) < 1.0 and float(torch.quantile(diff.flatten()[::7], 0.99)) <= 16
