"""Generation backends for CQA descriptions: a local Hugging Face model and any OpenAI-compatible endpoint,
plus a prompt-keyed cache so that repeated (conditions, demographics) combinations cost one call.

ESI (section 3.1.2) organised the retrieved knowledge with GPT-3.5. ``OpenAIBackend`` talks to any server that
implements ``POST {base_url}/chat/completions`` (OpenAI, vLLM, llama.cpp, Ollama) with the standard library's
HTTP client: one JSON request, retried with exponential back-off on connection errors, timeouts, HTTP 429 and
5xx; any other HTTP error fails at once. ``HFBackend`` loads a local causal or sequence-to-sequence model
directory and decodes greedily (deterministic). Neither downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

import torch

from ecgalign.data.errors import ECGAlignError, InputError


class BackendError(ECGAlignError):
    """A generation backend failed for one prompt (after its retries)."""


class Backend(Protocol):
    """Anything that turns a prompt into text; ``name`` keys the cache (model and settings)."""

    name: str

    def generate(self, prompt: str) -> str: ...


class PromptCache:
    """Responses keyed by sha256(backend name, prompt), persisted as JSON lines (append-only, flushed per
    entry, so an interrupted run keeps every finished call; a truncated last line is ignored)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._data: dict[str, str] = {}
        if self.path is not None and self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                        self._data[entry["key"]] = entry["text"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue

    @staticmethod
    def key(backend: str, prompt: str) -> str:
        return hashlib.sha256(f"{backend}\x1f{prompt}".encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def put(self, key: str, text: str) -> None:
        self._data[key] = text
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "text": text}) + "\n")
                fh.flush()


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible HTTP endpoint (``base_url`` ends before
    ``/chat/completions``, e.g. ``http://127.0.0.1:8000/v1``). The API key comes from ``api_key`` or the
    environment variable ``OPENAI_API_KEY`` (optional for local servers)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, temperature: float = 0.0, max_tokens: int = 256):
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"--endpoint {base_url!r}: expected an http(s) URL such as http://127.0.0.1:8000/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.temperature, self.max_tokens = temperature, max_tokens
        self.name = f"openai:{self.url}:{model}:t={temperature}:n={max_tokens}"
        self.calls = 0

    def generate(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": self.temperature, "max_tokens": self.max_tokens}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            self.calls += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    payload = resp.read()
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code == 429 or exc.code >= 500:
                    continue
                raise BackendError(f"{self.url}: {problem}") from exc
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                continue
            return _chat_text(payload, self.url)
        raise BackendError(f"{self.url}: gave up after {self.retries + 1} attempts ({problem})")


def _chat_text(payload: bytes, url: str) -> str:
    try:
        text = json.loads(payload)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"{url}: response is not a chat completion ({exc!r}): {payload[:200]!r}") from exc
    if not isinstance(text, str) or not text.strip():
        raise BackendError(f"{url}: empty completion")
    return text.strip()


class HFBackend:
    """Greedy decoding with a local Hugging Face model folder (causal LM, or encoder-decoder when its config
    says ``is_encoder_decoder``). The prompt is truncated from the left to ``max_input_tokens``."""

    def __init__(self, path: str | Path, *, max_new_tokens: int = 128, max_input_tokens: int = 1024,
                 device: str | None = None):
        # heavy: imported only when a local generation model is used
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"--model {path}: expected a local Hugging Face model folder with config.json")
        try:
            config = AutoConfig.from_pretrained(folder)
            self.seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            loader = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = loader.from_pretrained(folder).eval()
        except (OSError, ValueError) as exc:
            raise InputError(f"--model {path}: cannot load a generation model: {exc}") from exc
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.tokenizer.truncation_side = "left"
        self.max_new_tokens, self.max_input_tokens = max_new_tokens, max_input_tokens
        self.name = f"hf:{folder.resolve()}:n={max_new_tokens}"

    def generate(self, prompt: str) -> str:
        tok = self.tokenizer(prompt, return_tensors="pt", truncation=True, max_length=self.max_input_tokens)
        tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(**tok, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        new = out[0] if self.seq2seq else out[0, tok["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        if not text:
            raise BackendError(f"{self.name}: generated no text")
        return text
