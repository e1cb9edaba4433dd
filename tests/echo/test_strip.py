"""ECG-strip extraction: HSV binarisation, each of the four quality checks, trace -> signal."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from ecgalign.echo.strip import (AMPLITUDE, CONTINUITY, COVERAGE, HSV_OUTLIERS, NO_TRACE, StripConfig,
                                 extract_strip, rgb_to_hsv, strip_signal)
from ecgalign.synth.echo.render import MARKER_RGB, draw_marker, draw_strip, plan_strip

ROWS, COLS = 240, 320


def _ecg_like(n: int) -> np.ndarray:
    t = np.linspace(0, 2.0, n, endpoint=False)
    beats = sum(np.exp(-((t - c) / 0.012) ** 2) * 1.2 - np.exp(-((t - c - 0.03) / 0.015) ** 2) * 0.3
                for c in (0.3, 1.1, 1.9))
    return beats + 0.15 * np.exp(-((np.mod(t, 0.8) - 0.55) / 0.06) ** 2)


def _frame(defect: str | None = None, seed: int = 0, cut: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = _ecg_like(int(COLS * 0.88))
    plan = plan_strip(rng, ROWS, COLS, values, defect)
    frame = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
    frame[: int(ROWS * 0.7)] = rng.integers(0, 200, size=(int(ROWS * 0.7), COLS, 1), dtype=np.uint8)  # grey echo
    draw_strip(frame, plan, rng, coverage_cut=cut)
    draw_marker(frame, plan, 0.3)
    return frame, values


def test_hsv_matches_colorsys_on_opencv_scale() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    got = rgb_to_hsv(rgb[None])[0].astype(int)
    for (r, g, b), (h, s, v) in zip(rgb, got):
        hh, ss, vv = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
        assert v == round(vv * 255) and abs(s - ss * 255) <= 1
        if ss > 0:
            assert min(abs(h - hh * 180), 180 - abs(h - hh * 180)) <= 1


def test_clean_strip_passes_and_recovers_signal() -> None:
    frame, values = _frame()
    strip = extract_strip(frame)
    assert strip.reason is None, strip.detail
    assert strip.end - strip.start + 1 == values.size
    ref = strip_signal(values.astype(np.float32), 2.0, 250.0, column_delay=0.0)
    got = strip_signal(strip.y, 2.0, 250.0)
    assert np.corrcoef(ref, got)[0, 1] > 0.98


def test_marker_and_white_text_are_outside_the_window() -> None:
    hsv = rgb_to_hsv(np.array([[MARKER_RGB, (235, 235, 235)]], dtype=np.uint8))[0]
    lo, hi = StripConfig().hsv_lower, StripConfig().hsv_upper
    for px in hsv:
        assert not all(lo[i] <= px[i] <= hi[i] for i in range(3))


@pytest.mark.parametrize(("defect", "reason"), [("amplitude", AMPLITUDE), ("continuity", CONTINUITY),
                                                ("hsv_outliers", HSV_OUTLIERS)])
def test_planted_defect_gets_its_reason(defect: str, reason: str) -> None:
    for seed in range(3):
        frame, _ = _frame(defect, seed)
        assert extract_strip(frame).reason == reason


def test_short_trace_fails_coverage() -> None:
    frame, _ = _frame(None, 0, cut=0.3)
    strip = extract_strip(frame)
    assert strip.reason == COVERAGE and strip.metrics["coverage"] < 0.5


def test_no_trace() -> None:
    frame = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
    frame[-20:, :, :] = (200, 60, 60)  # red: outside the window
    assert extract_strip(frame).reason == NO_TRACE


def test_thresholds_come_from_config() -> None:
    frame, _ = _frame(None, 0, cut=0.6)
    assert extract_strip(frame).reason is None
    assert extract_strip(frame, StripConfig(min_coverage=0.6)).reason == COVERAGE
    with pytest.raises(ValueError, match="HSV window"):
        StripConfig(hsv_lower=(95, 0, 0), hsv_upper=(91, 255, 255))


def test_strip_signal_length_and_errors() -> None:
    assert strip_signal(np.zeros(100, np.float32), 2.0, 250.0).shape == (500,)
    with pytest.raises(ValueError):
        strip_signal(np.zeros(10, np.float32), 0.0, 250.0)


def test_amplitude_defect_planted_even_on_a_flat_clip() -> None:
    rng = np.random.default_rng(0)
    values = 0.05 * np.sin(np.linspace(0, 6, 280))  # a clip between beats: 0.05 mV
    plan = plan_strip(rng, ROWS, COLS, values, "amplitude")
    frame = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
    draw_strip(frame, plan, rng)
    assert extract_strip(frame).reason == AMPLITUDE


def test_short_fragment_between_gaps_is_trace_not_outlier() -> None:
    rng = np.random.default_rng(1)
    values = _ecg_like(int(COLS * 0.88))
    plan = plan_strip(rng, ROWS, COLS, values, None)
    plan.gaps = [(100, 112), (118, 130)]  # leaves a 6-column fragment (2 % of the width) between two gaps
    frame = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
    draw_strip(frame, plan, rng)
    strip = extract_strip(frame)
    assert strip.reason == CONTINUITY and strip.metrics["outlier_components"] == 0
