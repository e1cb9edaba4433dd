"""Row alignment (issue 14): a printout's rows moved to where the renderer draws them, found by the digitiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgalign.render import RenderConfig, Renderer
from ecgalign.render.digitize import digitize
from ecgalign.render.digitize.rows import BAND_SHARE, align_rows, row_map, target_baselines


def _render(ecg, **config) -> tuple[np.ndarray, list[float]]:
    signal, fs = ecg
    res = Renderer(RenderConfig.letter(100.0, **config)).render(signal[None], fs, seed=[0])
    page = res.images[0].permute(1, 2, 0).numpy()
    return page, list(res.ground_truth(0).layout["baselines_px"])


def _ink_rows(page: np.ndarray) -> np.ndarray:
    """Share of dark (trace) pixels per image row."""
    p = page.astype(np.float32)
    p = p / 255.0 if p.max() > 1.5 else p
    return (p.max(axis=2) < 0.35).mean(axis=1)


def _concentration(page: np.ndarray) -> float:
    """Share of the page's trace darkness in its 40 darkest image rows."""
    p = page.astype(np.float32)
    p = p / 255.0 if p.max() > 1.5 else p
    dark = 1.0 - p.max(axis=2)
    profile = np.where(dark > 0.3, dark, 0.0).sum(axis=1)
    return float(np.sort(profile)[-40:].sum() / profile.sum())


def test_row_map_moves_bands_rigidly_and_keeps_the_page_edges():
    found, target = [300.0, 440.0, 580.0, 720.0], [160.0, 355.0, 550.0, 745.0]
    src = row_map(found, target, 850)
    assert src[0] == 0.0 and src[-1] == 849.0 and np.all(np.diff(src) > 0)
    keep = BAND_SHARE * 0.5 * 140.0
    for f, t in zip(found, target):
        for dy in (-keep + 1, 0.0, keep - 1):  # inside a band: a pure shift
            assert src[int(t + dy)] == pytest.approx(f + int(t + dy) - t, abs=1e-9)
    with pytest.raises(ValueError, match="found 3 row"):
        row_map(found[:3], target, 850)
    with pytest.raises(ValueError, match="overlap or leave the page"):
        row_map([10.0, 400.0, 500.0, 600.0], target, 850)  # the first band would start above the page


def test_rows_of_another_printer_land_on_the_renderers_baselines(ecg):
    """A page with ecg-image-kit's row placement (35 mm pitch, lower part of the page) comes out with its rows
    where our default page has them, each trace moved rigidly: the aligned page's dark rows match the default
    page's, and the digitiser reads the same signal from both."""
    default, default_baselines = _render(ecg)
    packed, packed_baselines = _render(ecg, row_pitch_mm=35.0, rows_top_mm=66.0)
    assert abs(packed_baselines[0] - default_baselines[0]) > 100  # the two placements really differ
    aligned, info = align_rows(packed)
    assert info.status == "aligned", info.reason
    h, w = packed.shape[:2]
    target = target_baselines("3x4+II", h, w)
    assert np.allclose(info.target_px, target)
    assert np.abs(np.asarray(info.target_px) - default_baselines).max() < 3.0  # the renderer's own baselines
    assert np.abs(np.asarray(sorted(info.found_px)) - packed_baselines).max() < 3.0
    ink_d, ink_a, ink_p = _ink_rows(default), _ink_rows(aligned), _ink_rows(packed)
    r_aligned, r_packed = np.corrcoef(ink_d, ink_a)[0, 1], np.corrcoef(ink_d, ink_p)[0, 1]
    assert r_aligned > 0.85 and r_aligned > r_packed + 0.3, (r_aligned, r_packed)
    again = digitize(aligned)
    assert np.abs(np.asarray(again.baselines_px) - default_baselines).max() < 3.0
    # rigid within each band: where a packed row's trace stays near its baseline, the aligned page has the same
    # trace at the same column, moved by exactly (target - found)
    dark_p, dark_a = 1.0 - packed.astype(np.float32).max(axis=2) / 255.0, 1.0 - aligned.max(axis=2)
    keep = BAND_SHARE * 0.5 * min(np.diff(info.found_px).min(), np.diff(info.target_px).min())
    moved = []
    for f, t in zip(sorted(info.found_px), info.target_px):
        lo, hi = int(f - 0.8 * keep), int(f + 0.8 * keep)
        band = dark_p[lo:hi, 100:1000]
        cols = np.flatnonzero(band.max(axis=0) > 0.6)
        y_p = lo + band[:, cols].argmax(axis=0)
        lo_t = int(t - 0.8 * keep) - 2
        y_a = lo_t + dark_a[lo_t:int(t + 0.8 * keep) + 2, 100:1000][:, cols].argmax(axis=0)
        moved.append(np.abs(y_a - (y_p + (t - f))) <= 1.0)
    moved = np.concatenate(moved)
    assert moved.size > 2000 and moved.mean() > 0.95, moved.mean()


def test_a_page_the_digitiser_cannot_place_comes_back_unchanged_with_the_reason():
    blank = np.ones((850, 1100, 3), np.float32)
    out, info = align_rows(blank)
    assert info.status == "unchanged" and "refused" in info.reason and out is not None
    np.testing.assert_array_equal(out, blank)


def test_a_page_of_another_layout_is_not_forced_into_four_rows(ecg):
    page, _ = _render(ecg, layout="6x2")
    out, info = align_rows(page, "3x4+II")
    if info.status == "unchanged":  # six rows found (or the page refused): left as it was
        np.testing.assert_allclose(out, page.astype(np.float32) / (255.0 if page.max() > 1.5 else 1.0), atol=1e-6)
    else:  # the digitiser may find four rows in a six-row page; then they must be four distinct rows
        assert len(info.found_px) == 4


def test_a_tilted_page_comes_out_level(ecg):
    from scipy import ndimage

    page, baselines = _render(ecg)
    assert page.dtype == np.uint8
    tilted = ndimage.rotate(page.astype(np.float32), 1.5, reshape=False, order=1, cval=255.0, axes=(1, 0))
    tilted = tilted.round().clip(0, 255).astype(np.uint8)
    out, info = align_rows(tilted)
    assert info.status == "aligned" and abs(abs(info.rotation_deg) - 1.5) < 0.3, info
    # a level page has sharp dark rows: the trace darkness concentrates in few image rows again
    assert _concentration(tilted) < 0.7 * _concentration(page)
    assert _concentration(out) > 0.9 * _concentration(page)


@pytest.mark.parametrize("dpi_folder", ["plain-100dpi", "plain-200dpi"])
def test_ecg_image_kit_pages_are_aligned(shared_data, dpi_folder):
    """Foreign printouts (ecg-image-kit, ../shared/data/eik-renders): rows found, moved to our baselines, and
    found there again by the digitiser on the aligned page."""
    folder = shared_data / "eik-renders" / dpi_folder
    for path in sorted(folder.glob("*.png"))[:2]:
        out, info = align_rows(path)
        assert info.status == "aligned", (path, info.reason)
        assert min(info.found_px) > info.target_px[0] + 50  # eik's rows sit lower than ours
        again = digitize(out)
        ppm = again.px_per_mm[1]
        off = np.abs(np.asarray(sorted(again.baselines_px)) - info.target_px).max()
        assert off < 1.5 * ppm, (path, again.baselines_px)


def test_images_as_tensors_and_uint8(ecg):
    page, _ = _render(ecg)
    as_uint8 = page
    a, ia = align_rows(as_uint8)
    b, ib = align_rows(torch.from_numpy(as_uint8.astype(np.float32) / 255.0).permute(2, 0, 1))
    assert ia.status == ib.status == "aligned" and a.dtype == np.float32 and a.shape == page.shape[:2] + (3,)
    np.testing.assert_allclose(a, b, atol=1e-5)
