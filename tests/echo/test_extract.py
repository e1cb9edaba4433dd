"""Reading and extracting: bad DICOMs get named reasons (never a crash); store is atomic, resumable, parallel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from ecgalign.echo.dicom import EchoDicom, Exclusion, probe
from ecgalign.echo.extract import ExtractConfig, Rejected, extract_file
from ecgalign.echo.pipeline import extract_dataset
from ecgalign.echo.store import EchoStore
from ecgalign.echo.validate import score_store
from ecgalign.synth.echo.dicom_write import DicomIds, write_dicom

IDS = DicomIds("1", "1.2.3", "1.2.3.4", "1.2.3.4.5", "21500101", "080000")


def _first_cine(root: Path) -> Path:
    truth = pd.read_csv(root / "synth-truth.csv")
    return root / truth.query("kind == 'cine'").dicom_filepath.iloc[0]


def _bad_files(folder: Path, good: Path) -> dict[str, str]:
    """Write one file per failure mode; returns name -> expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.zeros((4, 120, 160, 3), np.uint8)
    (folder / "text.dcm").write_text("not a dicom at all")
    write_dicom(folder / "still.dcm", frames, 30.0, IDS, multiframe=False)
    write_dicom(folder / "long.dcm", np.zeros((121, 120, 160, 3), np.uint8), 30.0, IDS)
    data = good.read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) - 5000])
    ds = pydicom.dcmread(good)
    ds.NumberOfFrames = 0
    ds.save_as(folder / "zero.dcm")
    ds = pydicom.dcmread(good)
    for kw in ("CineRate", "FrameTime", "RecommendedDisplayFrameRate", "FrameIncrementPointer"):
        delattr(ds, kw)
    ds.save_as(folder / "norate.dcm")
    write_dicom(folder / "notrace.dcm", frames, 30.0, IDS)
    ds = pydicom.dcmread(good)
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "MONOCHROME2", 1
    del ds.PlanarConfiguration
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    ds.save_as(folder / "mono.dcm")
    ds = pydicom.dcmread(good)
    del ds.Rows
    ds.save_as(folder / "norows.dcm")
    return {"norows.dcm": "malformed_header", "text.dcm": "not_dicom", "still.dcm": "not_ultrasound_multiframe", "long.dcm": "too_many_frames",
            "truncated.dcm": "truncated_pixel_data", "zero.dcm": "zero_frames", "norate.dcm": "no_frame_rate",
            "notrace.dcm": "no_green_trace", "mono.dcm": "unsupported_pixel_format"}


def test_probe_reads_header(echo_root: Path) -> None:
    path = _first_cine(echo_root)
    header = probe(path)
    assert not isinstance(header, Exclusion)
    assert header.rows == 120 and header.cols == 160 and 32 <= header.n_frames <= 36
    dcm = EchoDicom(header)
    frames = dcm.frames()
    first = next(frames)
    assert first.shape == (120, 160, 3) and first.dtype == np.uint8
    assert sum(1 for _ in frames) == header.n_frames - 1


def test_bad_dicoms_get_named_reasons(echo_root: Path, tmp_path: Path) -> None:
    expected = _bad_files(tmp_path / "bad", _first_cine(echo_root))
    for name, reason in expected.items():
        got = extract_file(str(tmp_path / "bad" / name))
        assert isinstance(got, Rejected) and got.reason == reason, (name, got)
    report = extract_dataset(tmp_path / "bad", tmp_path / "store")
    assert report["kept"] == 0 and report["skipped"] == len(expected)
    assert report["skipped_by_reason"] == {r: list(expected.values()).count(r) for r in set(expected.values())}
    assert set(EchoStore(tmp_path / "store").skipped().reason) == set(expected.values())


def test_store_contents_match_files(echo_root: Path, echo_store: Path) -> None:
    store = EchoStore(echo_store)
    truth = pd.read_csv(echo_root / "synth-truth.csv")
    assert len(store) == int((truth.kind == "cine").sum())
    assert set(store.skipped().reason) == {"not_ultrasound_multiframe"}
    labels = pd.read_csv(echo_root / "echo-labels.csv").set_index("study_id")
    assert store.label_names == ["ef_lt_40", "lvh", "dilated_lv", "afib"]
    for i, row in store.items.iterrows():
        clip = store.clip(i)
        assert clip.shape == (row.n_frames, 224, 224) and clip.dtype == np.uint8 and clip.std() > 0
        assert store.strip(i).shape == (int(round(row.n_frames / row.fps * 250)),)
        assert list(store.labels(i)) == [labels.at[row.study_id, n] for n in store.label_names]
    scores = score_store(echo_store, echo_root)
    assert scores["strip_r_median"] >= 0.95 and scores["clean_kept"] == scores["clean"]


def test_resume_gives_the_same_store(echo_root: Path, tmp_path: Path) -> None:
    full = extract_dataset(echo_root, tmp_path / "full", shard_files=3)
    part = extract_dataset(echo_root, tmp_path / "part", shard_files=3, limit=4)
    assert part["files"] == 4
    (tmp_path / "part" / "clips-00099.npy.tmp.npy").write_bytes(b"junk from a crash")
    resumed = extract_dataset(echo_root, tmp_path / "part", shard_files=3, resume=True)
    assert resumed["processed_this_run"] == full["files"] - 4
    a, b = EchoStore(tmp_path / "full"), EchoStore(tmp_path / "part")
    assert list(a.items.rel) == list(b.items.rel)
    for i in range(len(a)):
        assert np.array_equal(a.clip(i), b.clip(i)) and np.array_equal(a.strip(i), b.strip(i))
    assert not (tmp_path / "part" / "clips-00099.npy.tmp.npy").exists()


def test_refuses_to_overwrite_or_resume_with_other_config(echo_root: Path, tmp_path: Path) -> None:
    extract_dataset(echo_root, tmp_path / "s", limit=2)
    with pytest.raises(FileExistsError):
        extract_dataset(echo_root, tmp_path / "s", limit=2)
    with pytest.raises(ValueError, match="different extraction config"):
        extract_dataset(echo_root, tmp_path / "s", ExtractConfig(echo_size=112), resume=True)
    report = extract_dataset(echo_root, tmp_path / "s", ExtractConfig(echo_size=112), overwrite=True, limit=2)
    assert EchoStore(tmp_path / "s").clip(0).shape[1:] == (112, 112) and report["files"] == 2
    assert json.loads((tmp_path / "s" / "echo-store.json").read_text())["report"]["files"] == 2


@pytest.mark.slow
def test_workers_give_identical_output(echo_root: Path, echo_store: Path, tmp_path: Path) -> None:
    extract_dataset(echo_root, tmp_path / "w2", workers=2, shard_files=4)
    a, b = EchoStore(echo_store), EchoStore(tmp_path / "w2")
    assert list(a.items.rel) == list(b.items.rel)
    assert all(np.array_equal(a.strip(i), b.strip(i)) for i in range(len(a)))


@pytest.mark.slow
def test_dask_local_cluster(echo_root: Path, echo_store: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from ecgalign.echo.cluster import extract_on_dask

    report = extract_on_dask(echo_root, tmp_path / "dask", address="local", n_workers=2, shard_files=4)
    a, b = EchoStore(echo_store), EchoStore(tmp_path / "dask")
    assert report["kept"] == len(a) and list(a.items.rel) == list(b.items.rel)
    assert all(np.array_equal(a.clip(i), b.clip(i)) for i in range(len(a)))


def test_flat_folder_without_record_list(echo_root: Path, tmp_path: Path) -> None:
    src = _first_cine(echo_root)
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(src, flat / "a.dcm")
    report = extract_dataset(flat, tmp_path / "s")
    store = EchoStore(tmp_path / "s")
    assert report["kept"] == 1 and int(store.items.study_id[0]) == -1 and store.label_names == []


def test_sweep_speed_sets_the_time_axis(echo_root: Path) -> None:
    path = str(_first_cine(echo_root))
    by_clip = extract_file(path)
    by_sweep = extract_file(path, ExtractConfig(sweep_px_per_s=100.0))
    n_cols = by_clip.metrics["end"] - by_clip.metrics["start"] + 1
    assert by_clip.strip_duration_s == pytest.approx(by_clip.header.n_frames / by_clip.header.fps)
    assert by_sweep.strip_duration_s == pytest.approx(n_cols / 100.0)
    assert by_sweep.strip.size == round(n_cols / 100.0 * 250)
