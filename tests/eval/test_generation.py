"""ECG-conditioned report generation: tokenizer, prefix decoders (from scratch and LoRA on a tiny Hugging Face
model built here), text metrics, the ECG-QA reader and the protocol with its random-init and no-ECG rows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ecgalign.data.errors import InputError
from ecgalign.data.splits import fold_split
from ecgalign.eval import text_metrics as tm
from ecgalign.eval.data import EvalData
from ecgalign.eval.generation import (GenerationConfig, generation_protocol, qa_samples, read_ecgqa, report_samples,
                                      train_decoder, generate)
from ecgalign.eval.protocols import Context, get_protocol
from ecgalign.eval.report import build_report
from ecgalign.models.decoders.prefix_lm import HFPrefixLM, PrefixTransformerLM, WordTokenizer

SENTENCES = {"NORM": "sinus rhythm normal ecg", "AFIB": "atrial fibrillation with rapid ventricular response",
             "SBRAD": "sinus bradycardia otherwise normal ecg"}
CODES = {"NORM": ["NORM", "SR"], "AFIB": ["AFIB"], "SBRAD": ["SBRAD", "NORM"]}
TINY = GenerationConfig(dim=32, depth=1, heads=2, n_prefix=2, epochs=25, patience=25, batch_size=16, lr=5e-3,
                        max_tokens=16, bertscore=False)


def _planted(n: int = 150, seed: int = 0):
    """Features whose first three dimensions say which of three reports a record has."""
    rng = np.random.default_rng(seed)
    kind = np.array(list(SENTENCES))[rng.integers(0, 3, n)]
    x = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    for j, k in enumerate(SENTENCES):
        x[kind == k, j] += 3.0
    return x, kind


def test_word_tokenizer_round_trip_and_unknown_words():
    tok = WordTokenizer.build(["Sinus rhythm, normal ECG.", "sinus bradycardia"])
    ids = tok.encode("sinus rhythm, normal ecg.")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "sinus rhythm, normal ecg."
    assert tok.decode(tok.encode("sinus tachycardia")) == "sinus <unk>"
    assert tok.words[4] == "sinus"  # most frequent word first


def test_prefix_decoder_learns_to_follow_the_ecg_and_the_no_ecg_prefix_cannot():
    x, kind = _planted()
    samples = report_samples([SENTENCES[k] for k in kind])
    train, val, test = np.arange(100), np.arange(100, 125), np.arange(125, 150)
    model, tok, info = train_decoder(x, samples, train, val, TINY)
    assert isinstance(model, PrefixTransformerLM) and 1 <= info["best_epoch"] <= info["epochs_run"]
    texts = generate(model, tok, x, samples, test, TINY.max_tokens)
    assert np.mean([t == SENTENCES[k] for t, k in zip(texts, kind[test])]) > 0.9
    blind, btok, _ = train_decoder(np.zeros_like(x), samples, train, val, TINY)
    blind_texts = generate(blind, btok, np.zeros_like(x), samples, test, TINY.max_tokens)
    assert len(set(blind_texts)) == 1  # a constant prefix says the same thing for every record


def test_lora_decoder_on_a_tiny_random_hugging_face_model_trains_only_adapter_and_lora():
    pytest.importorskip("peft")
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = WordTokenizer.build(SENTENCES.values())
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=2, n_positions=64))
    model = HFPrefixLM(8, lm, n_prefix=2, max_length=16, lora_r=4, pad_id=tok.pad_id, eos_id=tok.eos_id)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("adapter.") for n in trainable)
    ids = torch.tensor([tok.encode(SENTENCES["NORM"]), tok.encode(SENTENCES["SBRAD"])[:6]])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)), ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(torch.equal(before[n], dict(model.named_parameters())[n]) for n in frozen)
    out = model.generate(torch.zeros(2, 8), [[tok.bos_id], [tok.bos_id]], max_new_tokens=5)
    assert len(out) == 2 and all(len(o) <= 5 for o in out)


def test_bleu_rouge_and_meteor_by_hand(monkeypatch):
    pytest.importorskip("sacrebleu")
    refs = ["sinus rhythm normal ecg", "atrial fibrillation"]
    assert tm.bleu(refs, refs) == pytest.approx(100.0)
    assert tm.rouge_l(refs, refs) == pytest.approx(1.0)
    # LCS "sinus rhythm" of 2 / 4 and 2 / 3 tokens: F = 2 * 0.5 * 0.667 / 1.167 = 0.571; 0 for the second
    assert tm.rouge_l(["sinus rhythm abnormal", "normal"], refs) == pytest.approx((4 / 7) / 2)
    assert tm.bleu(["left bundle branch block", "qrs"], refs) < 5
    monkeypatch.setattr(tm, "wordnet_available", lambda: False)
    m = tm.meteor(refs, refs)
    assert m["meteor"] is None and "WordNet" in m["meteor_missing"] and m["meteor_no_synonyms"] > 0.95
    assert tm.meteor(["bradycardia", "block"], refs)["meteor_no_synonyms"] == 0.0
    with pytest.raises(InputError, match="2 references"):
        tm.bleu(["a"], refs)


def test_label_f1_reads_conditions_with_negation():
    texts = ["sinus rhythm. atrial fibrillation", "no atrial fibrillation, sinus bradycardia", ""]
    codes = [["SR"], ["SBRAD", "AFIB"], ["NORM"]]
    out = tm.label_f1(texts, codes, "scp")
    # tp: SR, SBRAD; fp: AFIB (record 0); fn: AFIB (record 1), NORM (record 2)
    assert out["label_precision"] == pytest.approx(2 / 3) and out["label_recall"] == pytest.approx(2 / 4)
    assert out["label_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert out["label_conditions"] == 4 and out["label_macro_f1"] == pytest.approx((1 + 1 + 0 + 0) / 4)


def test_bertscore_with_the_packaged_minilm_ranks_a_paraphrase_above_an_unrelated_text():
    pytest.importorskip("bert_score")
    refs = ["sinus rhythm normal ecg", "sinus rhythm normal ecg"]
    out = tm.bert_score_f1(["sinus rhythm normal ecg", "complete heart block with wide escape"], refs)
    assert "all-MiniLM-L6-v2" in out["bertscore_model"].replace("_", "-") or "minilm" in out["bertscore_model"].lower()
    same = tm.bert_score_f1(refs[:1], refs[:1])["bertscore_f1"]
    other = tm.bert_score_f1(["complete heart block with wide escape"], refs[:1])["bertscore_f1"]
    assert same == pytest.approx(1.0, abs=1e-4) and other < same - 0.1
    assert out["bertscore_f1"] == pytest.approx((same + other) / 2, abs=1e-4)


def test_ecgqa_reader_keeps_single_ecg_pairs_and_counts_the_rest(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([
        {"question": "What rhythm?", "answer": ["sinus rhythm"], "ecg_id": [3]},
        {"question": "Same rhythm in both?", "answer": ["yes"], "ecg_id": [3, 4]},
        {"question": "Any block?", "answer": "none", "ecg_id": 9},
        {"question": "Axis?", "ecg_id": [3]},
    ]))
    pairs, skipped = read_ecgqa(path)
    assert [(p.ecg_id, p.answer) for p in pairs] == [("3", "sinus rhythm"), ("9", "none")]
    assert len(skipped) == 2 and "2 ECGs" in skipped[0]["why"]
    samples = qa_samples(pairs, ["1", "2", "3"])
    assert samples.record.tolist() == [2] and samples.prompts == ["What rhythm?"] and len(samples.skipped) == 1
    path.write_text("{not json")
    with pytest.raises(InputError, match="qa.json"):
        read_ecgqa(path)
    path.write_text(json.dumps({"question": "x"}))
    with pytest.raises(InputError, match="JSON list"):
        read_ecgqa(path)


def _context(x, kind, noise):
    n = len(kind)
    folds = np.arange(n) % 10 + 1
    meta = pd.DataFrame({"position": np.arange(n), "record_id": [str(i) for i in range(n)], "fold": folds,
                         "report": [SENTENCES[k] for k in kind], "codes": [CODES[k] for k in kind]})
    meta.loc[0, "report"] = ""  # skipped and counted
    base = EvalData("toy", "/toy", "scp", meta, {})
    model = EvalData("toy", "/toy", "scp", meta, {}, features=x)
    rand = EvalData("toy", "/toy", "scp", meta, {}, features=noise)
    return Context(None, {}, {"model": model, "random_init": rand}, [], fold_split(folds),
                   "official folds", SimpleNamespace(cv=0)), base


def test_protocol_rows_and_report_section():
    x, kind = _planted(200, seed=1)
    noise = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    ctx, _ = _context(x, kind, noise)
    out = generation_protocol(ctx, TINY)
    rows = out["rows"]
    assert set(rows) == {"model", "random_init", "no_ecg", "reference_reports"}
    assert out["skipped"] == 1 and out["samples"] == 199
    assert rows["model"]["label_f1"] > 0.9 and rows["model"]["bleu"] > 80
    assert rows["model"]["label_f1"] > rows["random_init"]["label_f1"] + 0.2
    assert rows["model"]["label_f1"] > rows["no_ecg"]["label_f1"] + 0.2
    assert rows["reference_reports"]["label_f1"] == pytest.approx(1.0)
    json.dumps(out, allow_nan=False)
    section = get_protocol("generate").section(out, {})
    assert "no ECG (text prior only)" in section and "random init" in section and "BLEU" in section
    assert "generation" in build_report({"generation": out}, [])


def test_unknown_generation_setting_is_refused_by_name():
    x, kind = _planted(40)
    ctx, _ = _context(x, kind, x)
    ctx.config.generation = {"decoder": "transformer", "beam": 4}
    with pytest.raises(InputError, match="beam"):
        generation_protocol(ctx)


def test_missing_hugging_face_folder_is_a_clear_error(tmp_path):
    x, kind = _planted(40)
    samples = report_samples([SENTENCES[k] for k in kind])
    config = GenerationConfig(decoder=str(tmp_path), bertscore=False)
    with pytest.raises(InputError, match="config.json"):
        train_decoder(x, samples, np.arange(30), np.arange(30, 40), config)


@pytest.mark.slow
def test_eval_generate_command_on_a_0_1_0_checkpoint_writes_results_and_report(tmp_path):
    from typer.testing import CliRunner

    from ecgalign.cli.main import app
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.synth.store import synthesize_store

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0" / "esi-tiny"
    store = tmp_path / "store"
    synthesize_store(store, 40, seed=3, fs=100.0, preprocess=Preprocess.preset("baselines"))
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "generate", "--checkpoint", str(fixture), "--data", str(store),
                                      "--out", str(out), "--device", "cpu", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    block = json.loads((out / "results.json").read_text())["generation"]
    assert {"model", "random_init", "no_ecg", "reference_reports"} <= set(block["rows"])
    for role in ("model", "random_init", "no_ecg"):
        assert 0 <= block["rows"][role]["rouge_l"] <= 1 and "label_f1" in block["rows"][role]
    assert "ECG-conditioned report generation" in (out / "report.html").read_text()


def test_confidence_intervals_bracket_the_estimate():
    pytest.importorskip("rouge_score")
    refs = ["sinus rhythm normal ecg", "atrial fibrillation", "sinus bradycardia", "sinus rhythm"] * 5
    hyps = ["sinus rhythm normal ecg", "sinus rhythm", "sinus bradycardia", "atrial fibrillation"] * 5
    codes = [["SR", "NORM"], ["AFIB"], ["SBRAD"], ["SR"]] * 5
    out = tm.text_metrics(hyps, refs, codes, "scp", bertscore=False)
    for key in ("rouge_l", "label_f1"):
        low, high = out[f"{key}_ci95"]
        assert low <= out[key] <= high and low < high


def test_protocol_on_ecgqa_answers_uses_the_question_as_prompt(tmp_path):
    x, kind = _planted(200, seed=4)
    ctx, _ = _context(x, kind, x[::-1].copy())
    answers = {"NORM": "sinus rhythm", "AFIB": "atrial fibrillation", "SBRAD": "sinus bradycardia"}
    qa = [{"question": "what is the rhythm?", "answer": [answers[k]], "ecg_id": [i]} for i, k in enumerate(kind)]
    qa.append({"question": "compare these", "answer": ["yes"], "ecg_id": [1, 2]})
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    config = GenerationConfig(**{**TINY.__dict__, "qa": str(tmp_path / "qa.json")})
    out = generation_protocol(ctx, config)
    assert out["targets"] == "ECG-QA answers" and out["samples"] == 200 and out["skipped"] == 1
    assert set(out["rows"]) == {"model", "random_init", "no_ecg"}  # no label ceiling for free answers
    model = out["rows"]["model"]
    assert "label_f1" not in model and model["rouge_l"] > out["rows"]["no_ecg"]["rouge_l"] + 0.2
    assert all(not ex["generated"].startswith("what") for ex in model["examples"])  # the prompt is not repeated


def _tiny_hf_folder(path, texts):
    """A randomly initialised GPT-2 and a word-level fast tokenizer saved as a local model folder (no hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = WordTokenizer.build(texts).words[4:]
    vocab = {w: i for i, w in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                  unk_token="<unk>")
    tok.save_pretrained(path)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                               bos_token_id=1, eos_token_id=2)).save_pretrained(path)
    return path


def test_protocol_with_a_local_hugging_face_decoder_folder(tmp_path):
    pytest.importorskip("peft")
    x, kind = _planted(80, seed=5)
    ctx, _ = _context(x, kind, x)
    folder = _tiny_hf_folder(tmp_path / "lm", SENTENCES.values())
    config = GenerationConfig(**{**TINY.__dict__, "decoder": str(folder), "epochs": 3, "patience": 3})
    out = generation_protocol(ctx, config)
    row = out["rows"]["model"]
    assert out["decoder"] == str(folder) and row["records"] == 8
    assert 0 < row["training"]["trainable_params"] and all(isinstance(e["generated"], str) for e in row["examples"])
