"""The digitiser on printouts it did not draw (issue 14) and on hostile input (issue 11): page frames and
text masked, pulses without a lead-in, t = 0 from the layout's geometry, status flags, pixel budget, noise."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgalign.data.errors import ECGAlignError
from ecgalign.eval.signal_metrics import challenge_snr
from ecgalign.render import RenderConfig, Renderer
from ecgalign.render.digitize import DigitizeError, digitize
from ecgalign.render.digitize import geometry as geo
from ecgalign.render.digitize import trace as tr
from ecgalign.render.digitize.mask import clean_mask, long_runs
from ecgalign.render.imagefile import ImageError, image_tensor, read_image


def _page(ecg, dpi=100.0, seed=0):
    signal, fs = ecg
    res = Renderer(RenderConfig.letter(dpi)).render(signal[None], fs, seed=[seed])
    gt = res.ground_truth(0)
    ref = np.full(signal.shape, np.nan)
    for p in gt.panels:
        if not p["missing"]:
            k, a, b = p["lead_index"], p["sample_start"], p["sample_stop"]
            ref[k, a:b] = signal[k, a:b].numpy()
    return res.images[0].permute(1, 2, 0).numpy().copy(), ref, gt


def _strict(ref, est):
    snr = challenge_snr(ref, est, 500.0)
    return np.where(np.isfinite(ref).any(axis=1) & ~np.isfinite(snr), 0.0, snr)


def test_page_frame_and_footer_text_do_not_move_t0_or_enter_the_trace(ecg):
    """ecg-image-kit's failure modes on our own page: a 1-px frame on every edge (t = 0 was put at x = 0) and a
    text block 3 mm under the rhythm strip (the path jumped into it)."""
    img, ref, gt = _page(ecg)
    clean = np.median(_strict(ref, digitize(img).signal))
    img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = 0  # page frame
    y = int(gt.layout["baselines_px"][-1] + 3 * gt.layout["px_per_mm"])
    x0 = int(gt.layout["trace_x0_px"])
    for k in range(12):  # a line of "glyphs": 2 x 3 mm blocks 1 mm apart, under the rhythm strip
        a = x0 + k * 12
        img[y : y + 12, a : a + 8] = 0
        img[y + 2 : y + 10, a + 2 : a + 6] = 255
    d = digitize(img)
    assert d.masked["text"] >= 12 and d.masked["line_px"] >= img.shape[0] + img.shape[1]
    assert abs(d.trace_x0_px[0] - gt.layout["trace_x0_px"]) < gt.layout["px_per_mm"]
    framed = np.median(_strict(ref, d.signal))
    assert framed > 15 and framed > clean - 1.5, (clean, framed)


def test_clean_mask_removes_rules_border_fill_and_far_text_but_keeps_a_broken_trace():
    m = np.zeros((400, 600), dtype=bool)
    m[0, :] = True  # frame line along the border
    m[:60, :40] = np.tri(60, 40, dtype=bool)  # dark corner wedge (rotation fill)
    m[300, 50:550] = True  # a long rule
    x = np.arange(100, 500)
    y = (200 + 20 * np.sin(x / 9.0)).astype(int)
    for k in range(x.size - 1):  # a connected stroke: each column spans to the next column's level
        lo, hi = sorted((y[k], y[k + 1]))
        m[lo : hi + 1, x[k]] = True
    m[150:260, x[::61]] = False  # the trace broken in places: fragments stay linked
    m[120:126, 300:304] = True  # a "glyph" far from the trace
    out, rep = clean_mask(m, px_per_mm=4.0)
    assert not out[0].any() and not out[:60, :40].any() and not out[300].any()
    assert not out[120:126, 300:304].any() and rep.text >= 1
    assert out[y, x].mean() > 0.85
    assert long_runs(m, 400)[300, 60] and not long_runs(m, 400)[y[5], x[5]]


def _curve(kind: str, ppm: float = 4.0):
    """(u, v) of a row's curve starting with a calibration pulse (1 mV = 10 mm, 5 mm wide) drawn as ``kind``."""
    u = np.arange(0.0, 300.0, 0.5)
    base = 200.0
    v = np.full(u.size, base)
    if kind == "lead-in":  # ours: 2.5 mm flat, pulse, 2.5 mm flat
        top = (u >= 10) & (u < 30)
    elif kind == "eik":  # ecg-image-kit: the curve starts on the pulse's top
        top = u < 20
    else:  # no pulse: a QRS-like spike
        top = (u >= 60) & (u < 64)
    v[top] = base - 10 * ppm
    return u, v, base


@pytest.mark.parametrize("kind, fall", [("lead-in", 30.0), ("eik", 20.0)])
def test_pulses_with_and_without_a_flat_lead_in(kind, fall):
    u, v, base = _curve(kind)
    p = tr.find_pulse(u, v, base, 4.0, 4.0, 5.0, 10.0)
    assert p is not None and abs(p.fall_u - fall) < 1.0 and abs(p.height_px - 40) < 1
    assert abs((p.fall_u - p.rise_u) - 20) < 1.5


def test_a_narrow_spike_is_not_a_pulse():
    u, v, base = _curve("spike")
    assert tr.find_pulse(u, v, base, 4.0, 4.0, 5.0, 10.0) is None


class _FakeRow:
    def __init__(self, start, end, pulse_fall=None):
        self.u = np.linspace(start, end, 500)
        self.v = np.zeros(500)
        self.baseline = 0.0
        self.line_px = 1.0
        self.pulse = None if pulse_fall is None else tr.Pulse(pulse_fall - 20, pulse_fall, 0.0, 40.0)
        self.x0 = None


def test_time_origin_from_the_trace_end_snaps_to_either_pulse_convention():
    ppm, L = 4.0, (10.0 - 1 / 500) * 25 * 4.0
    for lead_mm in (0.0, 2.5):  # ecg-image-kit starts at the falling edge, ours 2.5 mm after it
        rows = [_FakeRow(80 + lead_mm * ppm, 80 + lead_mm * ppm + L, pulse_fall=80.0) for _ in range(4)]
        flags: list[str] = []
        assert geo.time_origins(rows, 10.0, 500.0, 25.0, ppm, ppm, flags) == 10.0
        assert all(abs(r.x0 - (80 + lead_mm * ppm)) < 1e-6 for r in rows) and flags == []
    rows = [_FakeRow(80, 80 + L) for _ in range(3)] + [_FakeRow(0, 80 + L)]  # one row starts at a frame
    flags = []
    geo.time_origins(rows, 10.0, 500.0, 25.0, ppm, ppm, flags)
    assert all(abs(r.x0 - 80) < 1e-6 for r in rows)
    half = [_FakeRow(80, 80 + L / 2 + 2) for _ in range(4)]  # a printer that halved the time per row
    assert geo.time_origins(half, 10.0, 500.0, 25.0, ppm, ppm, []) == 5.0
    odd = [_FakeRow(80, 80 + 0.7 * L) for _ in range(4)]  # 7 s of trace: fits no layout: flagged
    flags = []
    geo.time_origins(odd, 10.0, 500.0, 25.0, ppm, ppm, flags)
    assert any("layout expects" in f for f in flags)


def test_judge_flags_weak_leads_and_fails_unreadable_records():
    flags: list[str] = []
    assert geo.judge({"I": 0.99, "II": 0.98}, flags) == ("ok", 0.985) and flags == []
    assert geo.judge({"I": 0.99, "II": 0.4}, flags)[0] == "suspect" and "II" in flags[0]
    assert geo.judge({"I": 0.1, "II": 0.2, "III": 0.9}, [])[0] == "failed"
    assert geo.judge({}, [])[0] == "failed"


def test_a_damaged_row_makes_the_record_suspect_not_silently_ok(ecg):
    img, ref, gt = _page(ecg)
    assert digitize(img).status == "ok"
    b = int(gt.layout["baselines_px"][1])
    w = img.shape[1]
    img[b - 20 : b + 20, w // 3 : 2 * w // 3] = 255  # half a row wiped out
    d = digitize(img)
    assert d.status in ("suspect", "failed") and d.flags
    assert min(d.lead_confidence[k] for k in ("aVL", "V2")) < geo.OK_LEAD


def test_noise_and_blank_pages_are_refused_with_the_reason():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (850, 1100, 3), dtype=np.uint8)
    with pytest.raises(DigitizeError, match="no ECG trace found"):
        digitize(noise, name="noise.png")
    sparse = np.full((850, 1100, 3), 255, dtype=np.uint8)
    sparse[rng.random((850, 1100)) < 0.08] = 0  # salt noise: little ink, but no line anywhere
    with pytest.raises(DigitizeError, match="no ECG"):
        digitize(sparse, name="salt.png")
    with pytest.raises(DigitizeError, match="no ECG"):
        digitize(np.full((850, 1100, 3), 250, dtype=np.uint8))


@pytest.mark.parametrize("layout", ["3x4+II", "3x4", "6x2", "12x1"])
def test_layout_auto_tells_the_layouts_apart_and_reads_like_the_named_layout(ecg, layout):
    signal, fs = ecg
    page = Renderer(RenderConfig.letter(100.0, layout=layout)).render(signal[None], fs, seed=[1])
    rgb = page.images[0].permute(1, 2, 0).numpy().copy()
    auto = digitize(rgb, "auto")
    named = digitize(rgb, layout)
    assert auto.layout == layout and f"layout auto: {layout}" in " ".join(auto.notes)
    assert np.array_equal(auto.signal, named.signal, equal_nan=True)  # then the same pipeline as when named
    assert auto.status == named.status


def test_layout_auto_refuses_a_page_whose_rows_fit_no_layout(ecg):
    rgb = _page(ecg)[0]
    rows = [int(b) for b in digitize(rgb).baselines_px]
    # keep the first and the last two of the four rows: three rows, unevenly spaced (gaps 2 and 1 pitches)
    gap = rows[1] - rows[0]
    rgb[rows[1] - gap // 2 : rows[1] + gap // 2] = 255
    with pytest.raises(DigitizeError, match="layout auto: no layout fits"):
        digitize(rgb, "auto", name="three-rows.png")


def _strip_of(signal, fs, strip_signal):
    """A 3x4+II page of ``signal`` whose rhythm strip shows ``strip_signal``'s II instead (two renders with the
    same geometry, the strip's band of the second pasted into the first): another generator's --full_mode."""
    ren = Renderer(RenderConfig.letter(100.0))
    page = ren.render(signal[None], fs, seed=[2])
    other = ren.render(strip_signal[None], fs, seed=[2])
    strip = [p for p in page.ground_truth(0).panels if p["col"] == -1][0]
    ys = [c[1] for c in strip["cell_px"]]
    y0, y1 = int(min(ys)), int(np.ceil(max(ys)))
    rgb = page.images[0].permute(1, 2, 0).numpy().copy()
    rgb[y0:y1] = other.images[0].permute(1, 2, 0).numpy()[y0:y1]
    return rgb


@pytest.mark.parametrize("lead", ["V1", "aVL", "V5"])
def test_a_rhythm_strip_of_another_lead_is_read_as_that_lead(ecg, lead):
    from ecgalign.data.record import LEADS_12

    signal, fs = ecg
    k = LEADS_12.index(lead)
    swapped = signal.clone()
    swapped[1] = signal[k]
    d = digitize(_strip_of(signal, fs, swapped))
    assert any(f"rhythm strip shows {lead}, not II" in n for n in d.notes), d.notes
    shown = np.isfinite(d.signal)
    assert shown[k].mean() > 0.95  # the strip's lead now covers the whole 10 s
    assert shown[1, :1250].mean() > 0.95 and not shown[1, 1300:].any()  # II only where its panel shows it
    snr = challenge_snr(signal.numpy()[k][None], d.signal[k][None], fs)
    assert snr[0] > 10


def test_rhythm_strip_of_lead_ii_stays_ii_and_a_foreign_strip_is_flagged(ecg):
    signal, fs = ecg
    same = digitize(_strip_of(signal, fs, signal))
    assert not any("rhythm strip" in n for n in same.notes + same.flags) and same.status == "ok"
    from ecgalign.synth import synthesize_record

    rec = synthesize_record(7, seed=3, fs=500.0)  # another person's ECG: it repeats no panel of this page
    foreign = torch.from_numpy(np.ascontiguousarray(rec.signal, dtype=np.float32))
    d = digitize(_strip_of(signal, fs, foreign))
    assert d.status == "suspect" and any("rhythm strip does not repeat the II panel" in f for f in d.flags)


def _png_header(path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` px and holds no pixel data (what a bomb's header says)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_pixel_budget_is_checked_before_decoding(tmp_path):
    big = tmp_path / "big.png"
    _png_header(big, 9500, 9500)  # 270 MB decoded as RGB float, a few bytes on disk
    t0 = time.perf_counter()
    with pytest.raises(DigitizeError, match="pixel budget"):
        digitize(big)
    assert time.perf_counter() - t0 < 1.0
    bomb = tmp_path / "bomb.png"
    _png_header(bomb, 20000, 20000)  # over Pillow's own DecompressionBombError limit
    with pytest.raises(ImageError, match="pixel budget"):
        read_image(bomb)
    with pytest.raises(ImageError, match="pixel budget"):
        read_image(np.zeros((5000, 9000), dtype=np.uint8))
    page = np.zeros((100, 200, 3), dtype=np.uint8)
    assert read_image(page, max_pixels=20_000).shape == (100, 200, 3)
    with pytest.raises(ImageError, match="pixel budget"):
        read_image(page, max_pixels=19_999)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=0, max_size=2048), header=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]))
def test_fuzz_image_files_raise_only_named_errors(tmp_path_factory, data, header):
    path = tmp_path_factory.mktemp("fuzz") / "x.png"
    path.write_bytes(header + data)
    with pytest.raises(ECGAlignError):
        digitize(path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 200), w=st.integers(1, 200), channels=st.sampled_from([None, 1, 2, 3, 4, 5]),
    dtype=st.sampled_from(["uint8", "float32", "float64", "int16", "bool"]), fill=st.floats(allow_nan=True),
)
def test_fuzz_arrays_raise_only_named_errors(h, w, channels, dtype, fill):
    shape = (h, w) if channels is None else (h, w, channels)
    with np.errstate(over="ignore"):  # a huge float64 fill becomes inf in float32: part of the fuzz
        arr = np.full(shape, fill if dtype.startswith("float") else 0).astype(dtype)
    try:
        d = digitize(arr)
    except ECGAlignError:
        return
    assert d.signal.shape == (12, 5000)


def test_image_tensor_letterboxes_and_resizes(tmp_path):
    from PIL import Image

    page = np.zeros((850, 1100, 3), dtype=np.uint8)
    for path in (tmp_path / "a.png", tmp_path / "a.jpg"):
        Image.fromarray(page).save(path)
        x = image_tensor(path, (176, 224))
        assert x.shape == (3, 176, 224) and x.dtype.is_floating_point
        # 1100 x 850 scaled by 224 / 1100 -> 224 x 173: 3 rows of white paper split top and bottom
        assert x[:, 0].min() == 1.0 and x[:, -2].max() == 1.0 and x[:, 88].max() < 0.05
    tall = image_tensor(np.zeros((400, 100), dtype=np.uint8), (100, 100))
    assert tall[:, :, 0].min() == 1.0 and tall[:, 50, 50].max() == 0.0
    stretched = image_tensor(Image.fromarray(page), (176, 224), fit="resize")
    assert stretched.max() < 0.05
    with pytest.raises(ValueError, match="fit"):
        image_tensor(page, (10, 10), fit="crop")
    with pytest.raises(ImageError, match="pixel budget"):
        image_tensor(page, (10, 10), max_pixels=1000)


@pytest.mark.slow
def test_eik_renders_read_back_and_misreads_are_flagged(shared_data):
    """Three foreign printouts (ecg-image-kit, ../shared/data/eik-renders), strict Challenge SNR."""
    import csv

    import wfdb

    root = shared_data / "eik-renders"
    rows = {r["ecg_id"]: r for r in csv.DictReader(open(root / "manifest.csv", newline=""))}
    leads = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
    for ecg_id, floor in (("1", 8.0), ("105", 10.0), ("141", 8.0)):
        row = rows[ecg_id]
        rec = wfdb.rdrecord(str(shared_data / row["source_record"]))
        sig = rec.p_signal.T[[[n.upper() for n in rec.sig_name].index(k) for k in leads]]
        import json

        ref = np.full(sig.shape, np.nan)
        for lead in json.loads((root / row["json"]).read_text())["leads"]:
            k = [x.upper() for x in leads].index(lead["lead_name"].upper())
            ref[k, lead["start_sample"] : lead["end_sample"]] = sig[k, lead["start_sample"] : lead["end_sample"]]
        d = digitize(root / row["file"])
        snr = _strict(ref, d.signal)
        assert np.median(snr) > floor, (ecg_id, snr)
        assert d.status != "failed" and d.row_seconds == 10.0
