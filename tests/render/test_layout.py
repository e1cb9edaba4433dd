"""Page geometry: calibration in mm, panel placement and time windows for every layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgalign.data.record import LEADS_12
from ecgalign.render import LAYOUTS, RenderConfig, Renderer, compute_page, list_layouts


def _render(signal, fs=500.0, **cfg):
    return Renderer(RenderConfig(**cfg)).render(signal, fs)


def _flat(n=5000):
    return torch.zeros(12, n)


@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_one_millivolt_spans_gain_millimetres(gain):
    x = _flat()
    x[1, 2500:] = 1.0  # 1 mV step in lead II at 5 s (in the rhythm strip)
    res = _render(x, gain=gain, width=1100, height=850)
    strip = res.ground_truth(0).panel("II", rhythm=True)
    y = np.array(strip["trace_y_px"])
    mm = res.page.px_per_mm
    assert y[100] - y[-100] == pytest.approx(gain * mm, abs=1e-3)
    # and on the image: the drawn trace sits gain mm higher after the step
    img = res.images[0].float()
    rows = []
    for i in (1000, 4000):
        col = img[:, :, round(strip["trace_x_px"][i])].amax(0)  # (H,) brightest channel
        darkness = torch.where(col < 200, 255 - col, torch.zeros_like(col))
        r = torch.arange(col.shape[0]).float()
        darkness[(r - y[i]).abs() > 4] = 0
        rows.append(float((darkness * r).sum() / darkness.sum()))  # centre of the drawn line
    assert rows[0] - rows[1] == pytest.approx(gain * mm, abs=0.5)


@pytest.mark.parametrize("speed", [25.0, 50.0])
def test_one_second_spans_speed_millimetres(speed):
    res = _render(_flat(), speed=speed, width=2200, height=1700)
    gt = res.ground_truth(0)
    strip = gt.panel("II", rhythm=True)
    x = np.array(strip["trace_x_px"])
    assert x[500] - x[0] == pytest.approx(speed * res.page.px_per_mm, abs=1e-3)
    assert res.page.px_per_mm == pytest.approx(200 / 25.4)


def test_calibration_pulse_is_one_millivolt_and_200_ms():
    page = compute_page("3x4+II", 2200, 1700, None, 25.0, 10.0, 500.0, 5000)
    mm = page.px_per_mm
    for line, baseline in zip(page.calibration_polylines(), page.baselines):
        ys = [p[1] for p in line]
        xs = [p[0] for p in line]
        assert max(ys) - min(ys) == pytest.approx(10 * mm)
        assert xs[3] - xs[2] == pytest.approx(0.2 * 25 * mm)
        assert max(ys) == pytest.approx(baseline)


def test_fifty_mm_per_second_halves_the_shown_time():
    page = compute_page("3x4+II", 2200, 1700, None, 50.0, 10.0, 500.0, 5000)
    assert page.row_seconds == 5.0
    assert [p.t_end - p.t_start for p in page.panels if not p.rhythm] == [1.25] * 12
    assert page.x_of_sample(5000 // 2) <= page.width


@pytest.mark.parametrize("layout", list_layouts())
def test_every_lead_in_its_panel(layout, ecg):
    signal, fs = ecg
    res = _render(signal, fs, layout=layout, width=1100, height=850)
    grid, strips = LAYOUTS[layout]
    page = res.page
    assert [p.lead for p in page.panels] == [lead for row in grid for lead in row] + list(strips)
    assert sorted({p.lead for p in page.panels}) == sorted(LEADS_12)
    n_cols = len(grid[0])
    mm = page.px_per_mm
    for k, p in enumerate(page.panels):
        t = res.traces[k][0]
        # the window of column c is [c, c + 1) * 10 s / columns; rhythm strips show all 10 s
        width_s = 10.0 if p.rhythm else 10.0 / n_cols
        assert p.t_end - p.t_start == pytest.approx(width_s)
        assert p.t_start == pytest.approx(0.0 if p.rhythm else p.col * width_s)
        assert t.shape[0] == p.sample_stop - p.sample_start == round(width_s * fs)
        x0, y0, x1, y1 = p.cell
        assert float(t[:, 0].min()) >= x0 - 1e-3 and float(t[:, 0].max()) <= x1
        # y is the signal of this panel's lead, scaled by the gain, from the panel's baseline
        v = signal[p.lead_index, p.sample_start : p.sample_stop]
        assert torch.allclose(t[:, 1], p.baseline_y - v * 10.0 * mm, atol=1e-3)
        assert y0 < p.baseline_y < y1


def test_rows_and_columns_do_not_overlap():
    page = compute_page("3x4+II", 2200, 1700, None, 25.0, 10.0, 500.0, 5000)
    cells = [p.cell for p in page.panels]
    for i, a in enumerate(cells):
        for b in cells[i + 1 :]:
            overlap_x = min(a[2], b[2]) - max(a[0], b[0])
            overlap_y = min(a[3], b[3]) - max(a[1], b[1])
            assert overlap_x <= 1e-6 or overlap_y <= 1e-6
    assert all(0 <= c[0] and c[2] <= page.width and 0 <= c[1] and c[3] <= page.height for c in cells)


def test_unknown_layout_lists_the_layouts():
    with pytest.raises(ValueError, match=r"3x4\+II, 3x4, 6x2, 12x1"):
        RenderConfig(layout="4x3")
    with pytest.raises(ValueError, match="unknown layout"):
        compute_page("nope", 100, 100, None, 25, 10, 500, 5000)
