from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecgalign.data.datasets import ECGDataset
from ecgalign.data.labels import FixedScheme
from ecgalign.data.readers.base import Skipped
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError
from ecgalign.data.store import ECGStore, StoreSpec, StoreWriter, is_store

SCHEME = FixedScheme("toy", {"rhythm": ["AF", "SR"], "beats": ["PVC"]})
FS, SAMPLES = 100.0, 250


def make_record(i: int, rng: np.random.Generator | None = None) -> ECGRecord:
    rng = rng or np.random.default_rng(i)
    signal = (rng.standard_normal((12, SAMPLES)) * 0.5).astype(np.float32)
    return ECGRecord(
        signal=signal, fs=FS, leads=LEADS_12, record_id=f"r{i:03d}", dataset="toy", patient_id=f"p{i // 2}",
        age=40.0 + i, sex="F" if i % 2 else "M", report=f"report {i}", report_original=f"original {i}",
        codes=("AF",) if i % 3 == 0 else ("SR", "PVC"), code_system="toy", fold=i % 10 + 1,
        source=f"/data/r{i}.hea", extra={"i": i},
    )


def write(path, records, shard_records=10, encoding="int16", **kw):
    writer = StoreWriter(path, StoreSpec(FS, SAMPLES, LEADS_12, encoding, shard_records=shard_records), SCHEME, **kw)
    for i, rec in enumerate(records):
        writer.add(rec, i + 1)
    return writer.close()


def test_roundtrip_int16_sharded(tmp_path):
    records = [make_record(i) for i in range(25)]
    manifest = write(tmp_path / "s", records)
    assert manifest["records"] == 25 and len(manifest["shards"]) == 3
    assert is_store(tmp_path / "s")
    store = ECGStore(tmp_path / "s")
    assert len(store) == 25 and store.leads == LEADS_12 and store.fs == FS
    for i in (0, 9, 10, 24, -1):
        np.testing.assert_allclose(store.signal(i), records[i].signal, atol=0.5e-3 + 1e-7)
    order = np.array([24, 3, 10, 10, 0, 17])
    np.testing.assert_array_equal(store.signals(order), np.stack([store.signal(i) for i in order]))
    rec = store.record(7)
    assert (rec.record_id, rec.patient_id, rec.sex, rec.age, rec.fold) == ("r007", "p3", "F", 47.0, 8)
    assert rec.report == "report 7" and rec.report_original == "original 7" and rec.extra == {"i": 7}
    assert rec.codes == ("SR", "PVC")


def test_label_matrix_and_sets(tmp_path):
    write(tmp_path / "s", [make_record(i) for i in range(6)])
    store = ECGStore(tmp_path / "s")
    y, classes = store.labels("rhythm")
    assert classes == ["AF", "SR"]
    np.testing.assert_array_equal(y[:, 0], [1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(y[:, 1], [0, 1, 1, 0, 1, 1])
    with pytest.raises(ValueError, match="no label set 'superdiagnostic'"):
        store.labels("superdiagnostic")


def test_float16_encoding_keeps_normalised_values(tmp_path):
    records = [make_record(i) for i in range(4)]
    write(tmp_path / "s", records, encoding="float16")
    store = ECGStore(tmp_path / "s")
    np.testing.assert_allclose(store.signal(2), records[2].signal, rtol=1e-3, atol=1e-3)


def test_bad_records_are_skipped_and_listed_while_valid_ones_are_kept(tmp_path):
    good = [make_record(i) for i in range(5)]
    short = make_record(5).replace(signal=np.zeros((12, 100), np.float32))
    nan = make_record(6)
    nan.signal[3, 10] = np.nan
    eleven = make_record(7).replace(signal=np.zeros((11, SAMPLES), np.float32), leads=LEADS_12[:11])
    writer = StoreWriter(tmp_path / "s", StoreSpec(FS, SAMPLES, LEADS_12, shard_records=4), SCHEME)
    items = [good[0], short, good[1], nan, good[2], eleven, good[3], good[4]]
    for pos, rec in enumerate(items, 1):
        writer.add(rec, pos)
    writer.skip(Skipped("r099", "/data/r099.hea", "header does not parse"), 9)
    manifest = writer.close()
    assert manifest["records"] == 5 and manifest["skipped"] == 4
    store = ECGStore(tmp_path / "s")
    assert list(store.column("record_id")) == [r.record_id for r in good]
    skipped = store.skipped()
    assert list(skipped.record_id) == ["r005", "r006", "r007", "r099"]
    assert "signal shape (12, 100)" in skipped.problem[0] and "non-finite" in skipped.problem[1]
    assert skipped.source[0] == "/data/r5.hea"


def test_int16_clipping_is_counted(tmp_path):
    rec = make_record(0)
    rec.signal[0, :3] = [40.0, -50.0, 1.0]
    manifest = write(tmp_path / "s", [rec])
    assert manifest["clipped_samples"] == 2
    assert ECGStore(tmp_path / "s").signal(0)[0, 0] == pytest.approx(32.767)


def test_interrupted_write_resumes_to_identical_store(tmp_path):
    records = [make_record(i) for i in range(23)]
    write(tmp_path / "ref", records, shard_records=5)

    spec = StoreSpec(FS, SAMPLES, LEADS_12, shard_records=5)
    crashed = StoreWriter(tmp_path / "run", spec, SCHEME)
    for i in range(13):  # two full shards, three records buffered, then the process "dies"
        crashed.add(records[i], i + 1)
    del crashed
    (tmp_path / "run/signals/.shard-000002.tmp.npy").write_bytes(b"half a shard")

    resumed = StoreWriter(tmp_path / "run", spec, SCHEME, resume=True)
    assert resumed.resume_position == 10
    assert not (tmp_path / "run/signals/.shard-000002.tmp.npy").exists()
    for i in range(resumed.resume_position, 23):
        resumed.add(records[i], i + 1)
    resumed.close()

    a, b = ECGStore(tmp_path / "ref"), ECGStore(tmp_path / "run")
    np.testing.assert_array_equal(a.signals(range(23)), b.signals(range(23)))
    assert a.meta.equals(b.meta)
    assert not (tmp_path / "run/progress.json").exists()


def test_resume_refuses_different_settings_and_existing_stores(tmp_path):
    spec = StoreSpec(FS, SAMPLES, LEADS_12, shard_records=2)
    writer = StoreWriter(tmp_path / "run", spec, SCHEME)
    for i in range(3):
        writer.add(make_record(i), i + 1)
    del writer
    other = StoreSpec(FS * 2, SAMPLES, LEADS_12, shard_records=2)
    with pytest.raises(ValueError, match="cannot resume"):
        StoreWriter(tmp_path / "run", other, SCHEME, resume=True)
    with pytest.raises(FileExistsError, match="pass resume"):
        StoreWriter(tmp_path / "run", spec, SCHEME)
    write(tmp_path / "done", [make_record(0)])
    with pytest.raises(FileExistsError, match="finished store"):
        write(tmp_path / "done", [make_record(0)])
    write(tmp_path / "done", [make_record(1), make_record(2)], overwrite=True)
    assert len(ECGStore(tmp_path / "done")) == 2


def test_store_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="store.json is missing"):
        ECGStore(tmp_path)
    (tmp_path / "store.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="expected 'ecgalign-store'"):
        ECGStore(tmp_path)
    write(tmp_path / "s", [make_record(0)])
    with pytest.raises(IndexError, match="out of range for 1 records"):
        ECGStore(tmp_path / "s").signal(1)
    with pytest.raises(RecordError, match="no valid record"):
        writer = StoreWriter(tmp_path / "empty", StoreSpec(FS, SAMPLES, LEADS_12), SCHEME)
        writer.add(make_record(0).replace(signal=np.zeros((12, 3), np.float32)), 1)
        writer.close()


def test_dataset_batches_and_pickles_for_workers(tmp_path):
    records = [make_record(i) for i in range(12)]
    write(tmp_path / "s", records, shard_records=5)
    store = ECGStore(tmp_path / "s")
    store.signal(0)  # open a memory map, which must not be pickled
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.signal(11), store.signal(11))

    ds = ECGDataset(store, indices=[1, 3, 7, 9], label_set="rhythm")
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["ecg"].shape == (4, 12, SAMPLES) and batch["ecg"].dtype == torch.float32
    assert batch["report"] == ["report 1", "report 3", "report 7", "report 9"]
    assert batch["labels"].tolist() == [[0, 1], [1, 0], [0, 1], [1, 0]]
    assert batch["index"].tolist() == [1, 3, 7, 9]

    def flip(x, rng):
        return -x if rng.random() < 2 else x

    flipped = ECGDataset(store, transform=flip, with_report=False)[3]
    np.testing.assert_array_equal(flipped["ecg"].numpy(), -store.signal(3))
    assert "report" not in flipped
    with pytest.raises(IndexError):
        ECGDataset(store, indices=[12])
