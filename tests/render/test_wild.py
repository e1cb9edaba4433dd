"""Domain randomisation (issue 14): other printers' page conventions as RenderConfig toggles, the ``wild``
augmentation preset, and ``sample_wild_config``; the digitiser reads every convention back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecgalign.eval.signal_metrics import challenge_snr
from ecgalign.render import AUG_NAMES, AUGMENT_PRESETS, RenderConfig, Renderer, sample_wild_config
from ecgalign.render.digitize import digitize


def _render(ecg, **changes):
    signal, fs = ecg
    res = Renderer(RenderConfig.letter(100, **changes)).render(signal[None], fs, seed=[0])
    return res, res.images[0].amax(0).numpy()  # brightest channel: ink is dark in all three


def test_wild_preset_turns_every_artefact_on():
    wild = AUGMENT_PRESETS["wild"]
    assert all(getattr(wild, n) > 0 and 0 < wild.prob.get(n, 1.0) <= 1 for n in AUG_NAMES)


def test_sample_wild_config_is_seeded_and_varies_every_convention():
    assert sample_wild_config(3) == sample_wild_config(3)
    configs = [sample_wild_config(s) for s in range(60)]
    for name in ("frame", "pulse", "label_position", "grid", "calibration", "legend", "separators", "labels"):
        assert len({getattr(c, name) for c in configs}) > 1, name
    dpis = [c.width / 11 for c in configs]
    assert 100 <= min(dpis) < 140 and 260 < max(dpis) <= 300
    assert len({round(c.grid_weight, 2) for c in configs}) > 30
    with pytest.raises(ValueError, match="dpi"):
        sample_wild_config(0, dpi=(0, 100))


def test_page_frame_pulse_labels_grid_and_legend_toggles(ecg):
    res, plain = _render(ecg)
    _, framed = _render(ecg, frame=True)
    assert (plain[0] > 100).all() and (framed[0] < 100).mean() > 0.9 and (framed[:, 0] < 100).mean() > 0.9
    page, ppm = res.page, res.page.px_per_mm
    y_top = round(page.baselines[0] - page.gain * ppm)  # the pulse's top edge
    x_end = int(page.trace_x0)
    _, flush = _render(ecg, pulse="flush")
    assert flush[y_top, x_end - 3] < 100 and plain[y_top, x_end - 3] > 100  # ours ends 2.5 mm earlier
    below = Renderer(RenderConfig.letter(100, label_position="below")).render(ecg[0][None], ecg[1]).ground_truth(0)
    above = res.ground_truth(0)
    for a, b in zip(above.panels, below.panels):
        assert a["label_bbox_px"][1] < a["baseline_y_page_px"] < b["label_bbox_px"][1]
    _, heavy_grid = _render(ecg, grid_weight=2.0)
    assert heavy_grid.mean() < plain.mean() - 1
    _, near = _render(ecg, legend_gap_mm=8.0)
    y = int(page.baselines[-1] + 8 * ppm)
    assert (near[y - 2 : y + int(4 * ppm), : int(page.trace_x0 + 40 * ppm)] < 100).sum() > 20
    with pytest.raises(ValueError, match="pulse"):
        RenderConfig(pulse="square")
    with pytest.raises(ValueError, match="label_position"):
        RenderConfig(label_position="left")


def test_digitiser_reads_another_printers_conventions(ecg):
    """ecg-image-kit's conventions on our page (frame, flush pulse, labels below, legend under the strip)."""
    signal, fs = ecg
    cfg = RenderConfig.letter(100, frame=True, pulse="flush", label_position="below", legend_gap_mm=10.0)
    res = Renderer(cfg).render(signal[None], fs, seed=[0])
    ref = np.full(signal.shape, np.nan)
    for p in res.ground_truth(0).panels:
        ref[p["lead_index"], p["sample_start"] : p["sample_stop"]] = signal[p["lead_index"], p["sample_start"] : p["sample_stop"]]
    d = digitize(res.images[0])
    snr = challenge_snr(ref, d.signal, fs)
    assert np.median(np.nan_to_num(snr)) > 15 and d.status != "failed"
    assert abs(d.trace_x0_px[0] - res.page.trace_x0) < res.page.px_per_mm


def test_wild_renders_are_valid_images(ecg):
    signal, fs = ecg
    for seed in range(2):
        cfg = dataclasses.replace(sample_wild_config(seed, dpi=(100, 120)))
        res = Renderer(cfg).render(signal[None], fs, augment="wild", seed=[seed])
        assert res.images.shape == (1, 3, cfg.height, cfg.width) and res.images.float().std() > 5


def test_row_pitch_and_position_move_the_rows_and_must_fit(ecg):
    signal, fs = ecg
    default = Renderer(RenderConfig.letter(100)).render(signal[None], fs).page
    low = Renderer(RenderConfig.letter(100, row_pitch_mm=35.0, rows_top_mm=65.0)).render(signal[None], fs)
    page, ppm = low.page, low.page.px_per_mm
    assert np.allclose(np.diff(page.baselines) / ppm, 35.0) and not np.allclose(np.diff(default.baselines) / ppm, 35.0)
    assert page.baselines[0] / ppm == pytest.approx(65 + round(35 * 0.6)) and page.grid_origin[1] == pytest.approx(65 * ppm)
    # the drawn trace follows the stated geometry: ink on the first row's baseline, none where the default had it
    img = low.images[0].amax(0).numpy()
    x = slice(int(page.trace_x0), int(page.trace_x0 + 50 * ppm))
    assert (img[int(page.baselines[0]) - 3 : int(page.baselines[0]) + 4, x] < 100).any()
    assert page.baselines[0] > default.baselines[0] + 30 * ppm
    with pytest.raises(ValueError, match="do not fit"):
        Renderer(RenderConfig.letter(100, row_pitch_mm=50.0, rows_top_mm=30.0)).render(signal[None], fs)
    with pytest.raises(ValueError, match="row_pitch_mm"):
        RenderConfig(row_pitch_mm=0.0)
    with pytest.raises(ValueError, match="rows_top_mm"):
        RenderConfig(rows_top_mm=-1.0)


def test_wild_geometry_covers_other_printers_and_training_sizes(ecg):
    signal, fs = ecg
    configs = [sample_wild_config(s) for s in range(200)]
    pitches = [c.row_pitch_mm for c in configs]
    tops = [c.rows_top_mm for c in configs]
    assert min(pitches) < 28 and max(pitches) > 45  # close rows (ecg-image-kit ~35 mm) to the full page share
    assert min(tops) < 12 and max(tops) > 80
    for c in configs:  # every draw fits above the footer
        assert c.rows_top_mm + 4 * c.row_pitch_mm <= c.height / c.px_per_mm - 6.0 + 1e-6
    # a training size keeps the page conventions of the same seed and draws the line faintness
    small = [sample_wild_config(s, size=(176, 224)) for s in range(40)]
    for s, c in enumerate(small):
        big = configs[s]
        assert (c.height, c.width, c.dpi) == (176, 224, None)
        assert (c.grid, c.frame, c.pulse, c.labels, c.trace_mm) == (big.grid, big.frame, big.pulse, big.labels, big.trace_mm)
    faint = [c.min_trace_px for c in small]
    assert min(faint) < 0.4 and max(faint) > 0.85 and all(c.min_trace_px == 1.0 for c in configs)
    res = Renderer(small[0]).render(signal[None], fs, augment="wild", seed=[0])
    assert res.images.shape == (1, 3, 176, 224)
    with pytest.raises(ValueError, match="size"):
        sample_wild_config(0, size=(8, 8))


def test_wild_rows_renderer_keeps_the_default_rows_and_every_other_draw():
    """``rows="renderer"`` (training pages for models read with --align-rows): the row pitch and position are
    the renderer's default, and every other convention is what the same seed draws with random rows."""
    from dataclasses import asdict

    for seed in range(20):
        rand, kept = asdict(sample_wild_config(seed)), asdict(sample_wild_config(seed, rows="renderer"))
        assert kept["row_pitch_mm"] is None and kept["rows_top_mm"] is None
        assert rand["row_pitch_mm"] is not None
        assert {k: v for k, v in rand.items() if k not in ("row_pitch_mm", "rows_top_mm")} == \
            {k: v for k, v in kept.items() if k not in ("row_pitch_mm", "rows_top_mm")}
    with pytest.raises(ValueError, match="rows must be one of"):
        sample_wild_config(0, rows="aligned")
