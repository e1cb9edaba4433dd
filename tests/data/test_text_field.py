"""Which text a record is paired with (recipe key ``data.text_field``): report, CQA description, label names."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecgalign.data.datasets import ECGDataset
from ecgalign.data.errors import InputError
from ecgalign.data.labels import FixedScheme, scp_scheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import ECGStore, StoreSpec, StoreWriter
from ecgalign.data.texts import TEXT_FIELDS, code_names, empty_texts, label_names_text, record_texts

RECORDS = [  # (codes, report)
    (("SR", "LAFB"), "sinus rhythm. left anterior fascicular block"),
    (("AFIB", "NORM", "AFIB"), "atrial fibrillation"),
    ((), "no codes, only a report"),
    (("LAFB", "SR"), ""),
]


def _store(path, scheme=None, records=RECORDS, description: list[str] | None = None):
    writer = StoreWriter(path, StoreSpec(100.0, 200, LEADS_12, encoding="float16"), scheme or scp_scheme(),
                         info={"dataset": "toy"})
    for i, (codes, report) in enumerate(records):
        signal = np.random.default_rng(i).standard_normal((12, 200)).astype(np.float32)
        writer.add(ECGRecord(signal, 100.0, LEADS_12, f"r{i}", "toy", report=report, codes=codes), i + 1)
    writer.close()
    if description is not None:  # what `ecgalign text enrich` adds
        meta = pq.read_table(path / "metadata.parquet")
        pq.write_table(meta.append_column("description", pa.array(description, pa.string())), path / "metadata.parquet")
    return ECGStore(path)


def test_label_names_come_from_the_label_maps_in_code_order_each_once():
    assert code_names("scp", ["SR", "LAFB"]) == ["sinus rhythm", "left anterior fascicular block"]
    assert label_names_text("scp", ["AFIB", "NORM", "AFIB"]) == "atrial fibrillation, normal ECG"
    assert label_names_text("scp", ["LAFB", "SR"]) != label_names_text("scp", ["SR", "LAFB"])  # order kept
    assert label_names_text("snomed", ["164889003", "999", "164890007"]) == "Atrial fibrillation, Atrial flutter"
    assert label_names_text("cpsc2018", ["AF", "I-AVB"]) == "AF, I-AVB"  # class names already
    assert label_names_text("scp", []) == ""


def test_record_texts_per_field(tmp_path):
    store = _store(tmp_path / "s", description=["d0", "d1", None, "d3"])
    assert record_texts(store) == [r for _, r in RECORDS]
    assert record_texts(store, "description") == ["d0", "d1", "", "d3"]
    names = record_texts(store, "label_names")
    assert names == ["sinus rhythm, left anterior fascicular block", "atrial fibrillation, normal ECG", "",
                     "left anterior fascicular block, sinus rhythm"]
    assert record_texts(ECGStore(tmp_path / "s"), "label_names") == names  # deterministic
    assert empty_texts(names) == 1 and empty_texts(record_texts(store)) == 1
    assert set(TEXT_FIELDS) == {"report", "description", "label_names"}


def test_fixed_scheme_codes_are_their_own_names(tmp_path):
    scheme = FixedScheme("cpsc2018", {"cpsc2018": ["AF", "Normal"]})
    store = _store(tmp_path / "s", scheme, [(("Normal",), "x"), (("AF", "Normal"), "y")])
    assert record_texts(store, "label_names") == ["Normal", "AF, Normal"]


def test_missing_column_and_unknown_field_are_named(tmp_path):
    store = _store(tmp_path / "s")
    with pytest.raises(InputError, match=r"s: data.text_field='description' needs the metadata column "
                                         r"'description'.*text enrich"):
        record_texts(store, "description")
    with pytest.raises(InputError, match="'summary': expected one of report, description, label_names"):
        record_texts(store, "summary")


def test_dataset_batches_carry_the_selected_text(tmp_path):
    store = _store(tmp_path / "s", description=["d0", "d1", "d2", "d3"])
    for field, expected in (("report", [r for _, r in RECORDS]), ("description", ["d0", "d1", "d2", "d3"]),
                            ("label_names", record_texts(store, "label_names"))):
        ds = ECGDataset(store, text_field=field)
        assert ds[1]["report"] == expected[1]
        assert ds.batch([3, 0])["report"] == [expected[3], expected[0]]
    assert "report" not in ECGDataset(store, with_report=False, text_field="description")[0]


def test_records_without_a_code_system_take_the_stores(tmp_path):
    store = _store(tmp_path / "s")  # the toy records name no code_system; the store's scheme is scp
    assert set(store.column("code_system")) == {""}
    assert record_texts(store, "label_names")[0] == "sinus rhythm, left anterior fascicular block"
