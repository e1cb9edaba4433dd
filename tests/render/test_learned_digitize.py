"""The learned digitiser option (issue 14): trace segmenter network, its training pages, training with resume,
the digitiser driven by a trace map, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.eval.signal_metrics import challenge_snr
from ecgalign.render import RenderConfig, Renderer
from ecgalign.render.digitize import digitize
from ecgalign.render.digitize.learned import (
    SegmenterSpec,
    TraceSegmenter,
    TraceUNet,
    crops,
    input_maps,
    pixel_scores,
    render_page,
    segmentation_loss,
    train_segmenter,
)

runner = CliRunner()
SMALL = SegmenterSpec(widths=(4, 8))


def test_unet_keeps_the_input_size_and_tiles_stitch_like_one_pass():
    torch.manual_seed(0)
    net = TraceUNet(SegmenterSpec(widths=(4, 8, 8)))
    assert net(torch.zeros(2, 3, 32, 48)).shape == (2, 1, 32, 48)
    with torch.no_grad():  # an output that varies pixel to pixel, so that a misplaced tile shows
        for p in net.parameters():
            p.mul_(4.0)
    maps = np.random.default_rng(0).random((3, 101, 133)).astype(np.float32)  # not multiples of 4
    whole = TraceSegmenter(net, tile=1024).probability_of_maps(maps)
    tiled = TraceSegmenter(net, tile=40, overlap=40).probability_of_maps(maps)
    assert whole.shape == (101, 133) and np.isfinite(whole).all() and ((whole >= 0) & (whole <= 1)).all()
    # with context as wide as the receptive field, tiles give the one-pass map (a misplaced tile would not)
    assert np.abs(whole - tiled).max() < 1e-4
    assert np.abs(whole - np.roll(whole, 1, axis=1)).max() > 0.05  # (and the comparison can tell)
    no_context = TraceSegmenter(net, tile=40, overlap=0).probability_of_maps(maps)
    assert np.abs(whole - no_context).max() > 1e-3


def test_training_page_target_is_the_drawn_trace_and_pulses_not_grid_text_or_ticks(ecg):
    signal, fs = ecg
    page = render_page(signal.numpy(), fs, seed=3, dpi=(150, 150), augment="none")
    h, w = page.target.shape
    assert page.maps.shape == (3, h, w) and page.dpi == 150
    ink = page.maps[0]
    assert 0.003 < page.target.mean() < 0.05  # a thin line, not the page
    assert np.median(ink[page.target]) > 0.5  # every target pixel is drawn ink
    # the exact same page drawn by the renderer: traces of its ground truth lie inside the target
    from ecgalign.render.wild import sample_wild_config

    cfg = sample_wild_config(3, dpi=(150, 150))
    res = Renderer(cfg).render(signal[None], fs, augment="none", seed=3)
    xy = torch.cat([t[0] for t in res.traces]).numpy()
    xy = xy[np.isfinite(xy).all(1)]
    xi, yi = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1), np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
    assert page.target[yi, xi].mean() > 0.95
    if cfg.calibration:  # the calibration pulse tops (gain mm above each baseline) are target too
        top = res.page.calibration_polylines(cfg.pulse)[0][1]
        assert page.target[round(top[1]), round(top[0]) : round(top[0]) + 3].any()
    # lead labels are ink but not target
    boxes = res.label_boxes[0].numpy()
    if cfg.labels:
        x0, y0, x1, y1 = (int(v) for v in boxes[0])
        assert ink[y0 : y1 + 1, x0 : x1 + 1].max() > 0.5 and not page.target[y0 : y1 + 1, x0 : x1 + 1].any()


def test_crops_are_the_requested_size_and_mostly_on_the_trace(ecg):
    signal, fs = ecg
    page = render_page(signal.numpy(), fs, seed=1, dpi=(100, 100))
    x, y = crops(page, 16, 64, np.random.default_rng(0))
    assert x.shape == (16, 3, 64, 64) and y.shape == (16, 1, 64, 64)
    assert (y.reshape(16, -1).max(1) > 0).mean() >= 0.5
    # a page smaller than the crop is padded, not refused
    tiny = type(page)(page.maps[:, :40, :50], page.target[:40, :50], np.argwhere(page.target[:40, :50]), 100.0)
    x, y = crops(tiny, 2, 64, np.random.default_rng(0))
    assert x.shape == (2, 3, 64, 64) and (x[:, :, 40:] == 0).all()


def test_loss_and_pixel_scores():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 4, :] = 1
    good = torch.where(target > 0, 10.0, -10.0)
    assert segmentation_loss(good, target) < 0.01 < segmentation_loss(-good, target)
    s = pixel_scores(np.where(target[0, 0].numpy() > 0, 0.9, 0.1), target[0, 0].numpy() > 0)
    assert s == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert pixel_scores(np.full((8, 8), 0.9), target[0, 0].numpy() > 0)["precision"] == pytest.approx(0.125)
    wide = np.zeros((8, 8))
    wide[3:6] = 0.9  # the line drawn 3 px wide: wrong pixel by pixel, right within 1 px
    assert pixel_scores(wide, target[0, 0].numpy() > 0)["precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert pixel_scores(wide, target[0, 0].numpy() > 0, tolerance=1)["f1"] == 1.0


def _records(n: int = 3) -> np.ndarray:
    from ecgalign.synth import synthesize

    return np.stack([r.signal for r in synthesize(n, 5, fs=100.0)])


def test_training_learns_writes_a_segmenter_and_resumes_to_the_same_weights(tmp_path):
    x = _records()
    kw = dict(steps=12, batch=2, crop=32, dpi=(40.0, 50.0), val_pages=1, save_every=6, spec=SMALL, seed=1)
    full = train_segmenter(x, 100.0, tmp_path / "a", **kw)
    assert full["resumed_from"] == 0 and (tmp_path / "a" / "segmenter.pt").is_file()
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [6, 12] and {"f1", "precision", "recall", "f1_1px"} <= set(log[-1])

    class Stop(Exception):
        pass

    def stop_at_6(entry):
        if entry["step"] == 6:
            raise Stop

    with pytest.raises(Stop):
        train_segmenter(x, 100.0, tmp_path / "b", log=stop_at_6, **kw)
    resumed = train_segmenter(x, 100.0, tmp_path / "b", **kw)
    assert resumed["resumed_from"] == 6
    a = TraceSegmenter.load(tmp_path / "a").net.state_dict()
    b = TraceSegmenter.load(tmp_path / "b" / "segmenter.pt").net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="steps=12"):
        train_segmenter(x, 100.0, tmp_path / "b", **{**kw, "steps": 20})


def test_a_short_training_beats_the_untrained_network():
    """Fifty steps on small pages: validation F1 rises well above an untrained network's."""
    x = _records(4)
    spec = SegmenterSpec(widths=(6, 12, 24))
    kw = dict(batch=4, crop=48, dpi=(60.0, 70.0), val_pages=2, spec=spec, seed=0, lr=5e-3)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        trained = train_segmenter(x, 100.0, d, steps=50, save_every=50, **kw)["validation"]["f1"]
    with tempfile.TemporaryDirectory() as d:
        untrained = train_segmenter(x, 100.0, d, steps=1, save_every=1, **{**kw, "lr": 1e-9})["validation"]["f1"]
    assert trained > max(0.3, 2 * untrained), (trained, untrained)


class Oracle:
    """A segmenter that knows the answer: the page's exact trace mask (tests the digitiser's learned path)."""

    def __init__(self, mask: np.ndarray):
        self.mask, self.meta = mask.astype(np.float32), {"steps": 0}

    def probability_of_maps(self, maps: np.ndarray) -> np.ndarray:
        assert maps.shape[1:] == self.mask.shape
        return self.mask


def test_digitize_reads_a_trace_map_in_place_of_the_ink(ecg):
    signal, fs = ecg
    cfg = RenderConfig.letter(200.0)
    res = Renderer(cfg).render(signal[None], fs, augment="none", seed=[0])
    from ecgalign.render.draw import Polylines, rasterize

    h, w = res.images.shape[-2:]
    lines = Polylines.cat([Polylines.from_batch(t[0][None, None]) for t in res.traces])
    flat, a = rasterize(lines, cfg.trace_px, h, w)
    mask = torch.zeros(h * w).index_put_((flat,), a, accumulate=True).view(h, w).numpy() >= 0.3
    gt = res.ground_truth(0)
    ref = np.full(signal.shape, np.nan)
    for p in gt.panels:
        k, s0, s1 = p["lead_index"], p["sample_start"], p["sample_stop"]
        ref[k, s0:s1] = signal[k, s0:s1].numpy()
    learned = digitize(res.images[0], "3x4+II", segmenter=Oracle(mask))
    assert any("learned segmenter" in n for n in learned.notes)
    snr = float(np.nanmean(challenge_snr(ref, learned.signal, 500.0)))
    assert snr > 18, snr
    # an empty trace map: refused as "no trace", not read as noise
    from ecgalign.render.digitize import DigitizeError

    with pytest.raises(DigitizeError, match="no ECG trace"):
        digitize(res.images[0], "3x4+II", segmenter=Oracle(np.zeros_like(mask)))


def test_input_maps_are_the_darkness_maps():
    rgb = np.ones((40, 60, 3), dtype=np.float32)
    rgb[20, :, :] = 0.0  # a black line on white paper
    m = input_maps(rgb)
    assert m.shape == (3, 40, 60) and m[0, 20].min() > 0.9 and m[0, 5].max() < 0.05


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trace segmenter"):
        TraceSegmenter.load(tmp_path)
    bad = tmp_path / "x.pt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(ValueError, match="not a trace segmenter"):
        TraceSegmenter.load(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt"):
        TraceSegmenter.load(tmp_path / "junk.pt")
    seg = TraceSegmenter(TraceUNet(SMALL), {"steps": 3})
    seg.save(tmp_path / "ok.pt")
    back = TraceSegmenter.load(tmp_path / "ok.pt")
    assert back.meta == {"steps": 3} and back.net.spec == SMALL


def test_cli_trains_then_digitises_with_the_segmenter(ecg, tmp_path):
    from PIL import Image

    r = runner.invoke(app, ["train-digitizer", "--out", str(tmp_path / "seg"), "--data", "synth:3:1", "--steps", "4",
                            "--batch", "2", "--crop", "32", "--dpi-min", "40", "--dpi-max", "50", "--save-every", "2",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["records"] == 3 and out["skipped"] == 0 and out["steps"] == 4
    signal, fs = ecg
    res = Renderer(RenderConfig.letter(100.0)).render(signal[None], fs, seed=[0])
    Image.fromarray(res.images[0].permute(1, 2, 0).numpy()).save(tmp_path / "p.png")
    # a 4-step network reads nothing useful: the run must end in a status or a one-line refusal, not a crash
    r = runner.invoke(app, ["digitize", str(tmp_path / "p.png"), "--out", str(tmp_path / "rec"), "--segmenter",
                            str(tmp_path / "seg"), "--json"])
    assert r.exit_code in (0, 2, 3) and r.exception is None or isinstance(r.exception, SystemExit), r.output
    r = runner.invoke(app, ["digitize", str(tmp_path / "p.png"), "--out", str(tmp_path / "rec"), "--segmenter",
                            str(tmp_path / "nothing")])
    assert r.exit_code != 0 and "no trace segmenter" in r.output
    r = runner.invoke(app, ["train-digitizer", "--out", str(tmp_path / "s2"), "--data", str(tmp_path / "missing")])
    assert r.exit_code != 0 and "missing" in r.output
