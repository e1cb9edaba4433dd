"""CQA index (incremental build, filtered retrieval) and store enrichment with the extractive backend."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from ecgalign.data.store import ECGStore
from ecgalign.synth.store import synthesize_store
from ecgalign.text.cqa import enrich as enrich_mod
from ecgalign.text.cqa.describe import RecordQuery, compose_extractive, supported_sentences
from ecgalign.text.cqa.enrich import DESCRIPTION_FIELD, EnrichConfig, enrich_store, record_query
from ecgalign.text.cqa.index import Hit, KnowledgeIndex, build_index
from ecgalign.text.cqa.knowledge import packaged_corpus

pytest.importorskip("lancedb")


class HashEmbedder:
    """A deterministic bag-of-words embedder: tests need retrieval to work, not MiniLM."""

    def __init__(self, name: str = "hash-bow", dim: int = 256):
        self.name, self.dim = name, dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(",", " ").split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "kb"
    build_index(path, embedder=HashEmbedder())
    return KnowledgeIndex(path, embedder=HashEmbedder())


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "store"
    synthesize_store(out, 40, seed=3, fs=100.0, seconds=2.0)
    return out


def test_incremental_rebuild_embeds_only_changes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Atrial flutter\n\nSawtooth waves.\n")
    (docs / "b.txt").write_text("First paragraph.\n\nSecond paragraph.")
    (docs / "bad.pdf").write_bytes(b"not a pdf")
    out = tmp_path / "kb"
    first = build_index(out, [docs], embedder=HashEmbedder())
    assert first.added == first.chunks and first.documents == 2
    assert [s["file"].endswith("bad.pdf") for s in first.skipped] == [True]
    again = build_index(out, [docs], embedder=HashEmbedder())
    assert (again.added, again.removed, again.unchanged) == (0, 0, first.chunks)
    (docs / "a.md").write_text("# Atrial flutter\n\nRegular sawtooth waves in II, III and aVF.\n")
    changed = build_index(out, [docs], embedder=HashEmbedder())
    assert (changed.added, changed.removed) == (1, 1)
    assert len(KnowledgeIndex(out, embedder=HashEmbedder())) == first.chunks
    other = build_index(out, [docs], embedder=HashEmbedder(name="other-model"))
    assert other.added == other.chunks  # another model: everything re-embedded
    assert json.loads((out / "kb.json").read_text())["model"] == "other-model"


def test_query_filters(kb):
    hits = kb.query("regular sawtooth flutter waves", 2)
    assert hits[0].condition == "atrial-flutter" and len(hits) == 2
    hits = kb.query("sawtooth waves", 3, condition="sinus-rhythm")
    assert len(hits) == 3 and {h.condition for h in hits} == {"sinus-rhythm"}
    source = packaged_corpus()["atrial-flutter"].source
    hits = kb.query("waves", 50, source=source)
    assert hits and {h.source for h in hits} == {source}
    hits = kb.query("waves", 4, condition="atrial-flutter", sections=["leads"])
    assert [h.section for h in hits] == ["leads"]


def _check_supported(out: str) -> list[str]:
    """Every description names only conditions of its record's labels (or their declared features), and
    names all of them."""
    corpus = packaged_corpus()
    meta = ECGStore(out).meta
    texts = []
    for row in meta.to_dict("records"):
        query = record_query(row, corpus)
        text = row[DESCRIPTION_FIELD]
        assert text, row["record_id"]
        assert set(corpus.mentioned(text, negation=False)) <= corpus.allowed(query.conditions), (row["codes"], text)
        for name in query.names:
            assert name in text
        texts.append(text)
    return texts


def test_enrich_synthetic_store(kb, synth, tmp_path):
    report = enrich_store(synth, tmp_path / "out", kb)
    assert report.records == report.described == 40 and report.backend_errors == 0
    texts = _check_supported(tmp_path / "out")
    src, out = ECGStore(synth), ECGStore(tmp_path / "out")
    assert list(out.meta["report"]) == list(src.meta["report"])  # the original report stays beside it
    np.testing.assert_array_equal(out.signals(range(40)), src.signals(range(40)))
    assert out.manifest["text_fields"][DESCRIPTION_FIELD]["top_k"] == 2
    assert out.column(DESCRIPTION_FIELD).tolist() == texts
    assert not (tmp_path / "out" / ".enrich").exists()
    # deterministic per seed, varied across seeds
    enrich_store(synth, tmp_path / "same", kb)
    assert ECGStore(tmp_path / "same").column(DESCRIPTION_FIELD).tolist() == texts
    enrich_store(synth, tmp_path / "seed1", kb, config=EnrichConfig(seed=1))
    other = ECGStore(tmp_path / "seed1").column(DESCRIPTION_FIELD).tolist()
    assert sum(a != b for a, b in zip(texts, other)) > 10
    assert len(set(texts)) > 30  # varied across records


def test_enrich_refuses_occupied_output_and_resumes(kb, synth, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        enrich_store(synth, out, kb)
    monkeypatch.setattr(enrich_mod, "_BATCH", 8)
    original = enrich_mod.Describer.describe
    calls = {"n": 0}

    def flaky(self, query):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt  # an interrupted run
        return original(self, query)

    monkeypatch.setattr(enrich_mod.Describer, "describe", flaky)
    with pytest.raises(KeyboardInterrupt):
        enrich_store(synth, out, kb, overwrite=True)
    state = json.loads((out / ".enrich" / "state.json").read_text())
    assert state["done"] == 16
    report = enrich_store(synth, out, kb, resume=True)
    assert report.resumed_from == 16 and report.records == 40
    monkeypatch.setattr(enrich_mod.Describer, "describe", original)
    enrich_store(synth, tmp_path / "full", kb)
    assert ECGStore(out).column(DESCRIPTION_FIELD).tolist() == ECGStore(tmp_path / "full").column(DESCRIPTION_FIELD).tolist()


def test_records_without_codes_use_the_report():
    corpus = packaged_corpus()
    q = record_query({"record_id": "r1", "codes": [], "code_system": "none", "age": 61.4, "sex": "F",
                      "report": "Sinus rhythm. No atrial fibrillation. Left anterior fascicular block."}, corpus)
    assert q.from_report and "sinus-rhythm" in q.conditions and "atrial-fibrillation" not in q.conditions
    assert (q.age, q.sex) == (61, "F")
    q = record_query({"record_id": "r2", "codes": ["XYZ"], "code_system": "scp", "age": None, "sex": None,
                      "report": ""}, corpus)
    assert q.conditions == () and q.unknown_codes == ("scp:XYZ",)


@pytest.mark.slow
@pytest.mark.realdata
def test_enrich_ptbxl500_every_description_supported(shared_data, kb, tmp_path):
    from ecgalign.data.convert import convert
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.data.readers import open_dataset

    store = tmp_path / "ptbxl"
    convert(open_dataset(shared_data / "ptbxl-500", None, fs=100), store, Preprocess.preset("baselines"))
    report = enrich_store(store, tmp_path / "out", kb)
    assert report.records == 500 and report.backend_errors == 0 and report.unknown_codes == {}
    assert report.without_conditions == 0
    _check_supported(tmp_path / "out")


def _hit(cid: str, text: str) -> Hit:
    return Hit(id=cid, text=text, title=cid, condition=cid, source="s", section="leads", doc="d", score=1.0)


def test_compose_extractive_drops_unsupported_and_duplicate_sentences():
    corpus = packaged_corpus()
    query = RecordQuery("r7", ("sinus-rhythm", "lafb"), ("sinus rhythm", "left anterior fascicular block"), 70, "M")
    hits = {
        "sinus-rhythm": [_hit("sinus-rhythm", "P waves are upright in II. Atrial fibrillation is absent here.")],
        "lafb": [_hit("lafb", "P waves are upright in II. Leads II, III and aVF show rS complexes.")],
    }
    text, dropped = compose_extractive(query, hits, corpus, seed=0, max_sentences=3)
    assert dropped == 1 and "fibrillation" not in text  # names a condition the record lacks
    assert text.count("P waves are upright in II.") == 1  # deduplicated across conditions
    assert "a 70-year-old male patient" in text and "rS complexes" in text
    assert compose_extractive(query, hits, corpus, seed=0, max_sentences=3) == (text, dropped)
    empty = RecordQuery("r8", (), (), None, None)
    assert compose_extractive(empty, {}, corpus)[0].endswith("No diagnostic statement is available for this recording.")


def test_supported_sentences_allow_declared_features():
    corpus = packaged_corpus()
    text = "Q waves in II, III and aVF. Inverted T waves in the same leads. Left bundle branch block is present."
    keep, dropped = supported_sentences(text, ["inferior-mi"], corpus)
    assert keep == ["Q waves in II, III and aVF.", "Inverted T waves in the same leads."] and dropped == 1
    keep, dropped = supported_sentences(text, ["sinus-rhythm"], corpus)
    assert dropped == 2
