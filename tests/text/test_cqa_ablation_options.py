"""The CQA ablation settings of ESI appendix A: knowledge base off (--no-retrieval), top-k, fixed vs varied prompt."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.store import ECGStore
from ecgalign.synth.store import synthesize_store
from ecgalign.text.cqa.describe import compose_extractive
from ecgalign.text.cqa.enrich import DESCRIPTION_FIELD, EnrichConfig, enrich_store, record_query
from ecgalign.text.cqa.index import KnowledgeIndex, build_index
from ecgalign.text.cqa.knowledge import packaged_corpus

pytest.importorskip("lancedb")
runner = CliRunner()


class HashEmbedder:
    """A deterministic bag-of-words embedder: retrieval has to work, not MiniLM."""

    name, dim = "hash-bow", 256

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(",", " ").split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cqa-ablation")
    build_index(root / "kb", embedder=HashEmbedder())
    synthesize_store(root / "s", 30, seed=4, fs=100.0, seconds=2.0)
    return root, KnowledgeIndex(root / "kb", embedder=HashEmbedder())


def _descriptions(path) -> list[str]:
    return [str(d) for d in ECGStore(path).column(DESCRIPTION_FIELD)]


def test_kb_off_writes_demographics_and_condition_names_only(setup, tmp_path):
    root, kb = setup
    report = enrich_store(root / "s", tmp_path / "off", kb, config=EnrichConfig(retrieval=False))
    assert report.unique_queries == 0 and report.described == 30
    corpus = packaged_corpus()
    meta = ECGStore(root / "s").meta.to_dict("records")
    off = _descriptions(tmp_path / "off")
    for row, text in zip(meta, off):
        assert text == compose_extractive(record_query(row, corpus), {}, corpus)[0]
    on = _descriptions(enrich_store(root / "s", tmp_path / "on", kb).out)
    assert all(len(a) < len(b) for a, b in zip(off, on) if "No diagnostic statement" not in a)
    assert ECGStore(tmp_path / "off").manifest["text_fields"][DESCRIPTION_FIELD]["retrieval"] is False


def test_top_k_and_template_reach_retrieval(setup, tmp_path):
    root, kb = setup
    one = enrich_store(root / "s", tmp_path / "k1", kb, config=EnrichConfig(top_k=1))
    two = enrich_store(root / "s", tmp_path / "k2", kb, config=EnrichConfig(top_k=2))
    assert one.unique_queries == two.unique_queries > 0
    assert _descriptions(tmp_path / "k1") != _descriptions(tmp_path / "k2")  # one waveform passage instead of two
    vary = enrich_store(root / "s", tmp_path / "vary", kb, config=EnrichConfig(top_k=1, template=None))
    assert vary.unique_queries > one.unique_queries  # several question wordings were asked


def test_cli_no_retrieval(setup, tmp_path):
    root, _ = setup
    result = runner.invoke(app, ["text", "enrich", str(root / "s"), "--out", str(tmp_path / "o"), "--kb",
                                 str(root / "kb"), "--no-retrieval", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["unique_queries"] == 0
