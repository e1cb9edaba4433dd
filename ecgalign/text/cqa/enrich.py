"""``enrich_store``: a store in, the same store out with a CQA description beside every report.

The output store has the input's signals (hard links where possible, else copies), the same metadata and two
more columns: ``description`` (the enriched text; "" where the backend failed for the record) and
``description_conditions`` (the condition ids it was built from). ``store.json`` gains a ``text_fields``
entry recording how the descriptions were made. ``ECGStore(out).column("description")`` reads them.

The run is resumable: finished batches of records are written atomically to ``OUT/.enrich/`` with the
statistics so far, and a rerun with ``resume`` continues after the last one; the manifest is written last,
so ``OUT`` is a store only once it is complete. LLM responses are cached by prompt in ``cache.jsonl``
(``OUT/cqa_cache.jsonl`` unless given), so identical (conditions, demographics) combinations cost one call,
also across runs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgalign.data.errors import InputError
from ecgalign.data.store import ECGStore
from ecgalign.text.cqa.backends import Backend, BackendError, PromptCache
from ecgalign.text.cqa.describe import (PROMPT_TEMPLATES, RecordQuery, build_prompt, compose_extractive,
                                        supported_sentences, template_for)
from ecgalign.text.cqa.index import Hit, KnowledgeIndex
from ecgalign.text.cqa.knowledge import WAVEFORM_SECTIONS, Corpus, packaged_corpus
from ecgalign.data.reports import normalize_report, translate_report

DESCRIPTION_FIELD = "description"
CONDITIONS_FIELD = "description_conditions"
WORK = ".enrich"
_BATCH = 256
_PROMPT_KEY = "prompt_key"  # kept in the work batches only, to count unique prompts across resumed runs


@dataclass
class EnrichConfig:
    """How descriptions are made. ``template`` None = a template per condition combo (appendix A.3).
    ``retrieval`` False = the knowledge base off (appendix A.2's "no textbook" row): no passage is retrieved, so
    the extractive composer writes the demographics and the condition names only, and an LLM gets no context."""

    backend: str = "extractive"
    top_k: int = 2
    seed: int = 0
    template: int | None = 0
    max_sentences: int = 2
    retrieval: bool = True

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"--top-k must be >= 1, got {self.top_k}")
        if self.max_sentences < 1:
            raise InputError(f"--max-sentences must be >= 1, got {self.max_sentences}")
        if self.template is not None and not 0 <= self.template < len(PROMPT_TEMPLATES):
            raise InputError(f"--template {self.template}: expected 0..{len(PROMPT_TEMPLATES) - 1} or 'vary'")


@dataclass
class EnrichReport:
    out: str
    records: int = 0
    described: int = 0
    without_conditions: int = 0
    conditions_from_report: int = 0
    unique_queries: int = 0
    unique_prompts: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    backend_errors: int = 0
    unsupported_sentences_dropped: int = 0
    unknown_codes: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def training_texts(store: ECGStore | str | Path, field_name: str = DESCRIPTION_FIELD,
                   fallback: str = "report") -> list[str]:
    """One training text per record: ``field_name`` (e.g. the CQA description), or ``fallback`` (the report)
    where it is empty, for instance where the backend failed for that record."""
    store = store if isinstance(store, ECGStore) else ECGStore(store)
    primary = store.column(field_name).tolist()
    backup = store.column(fallback).tolist()
    return [str(p) if isinstance(p, str) and p.strip() else str(b or "") for p, b in zip(primary, backup)]


def record_query(row: dict[str, Any], corpus: Corpus) -> RecordQuery:
    """Conditions of one metadata row: from its codes; from its (English-rendered) report if no code maps."""
    codes = [str(c) for c in (row.get("codes") if row.get("codes") is not None else [])]
    system = str(row.get("code_system") or "")
    conditions, unknown = corpus.for_codes(system, codes)
    from_report = False
    if not conditions and row.get("report"):
        conditions = corpus.mentioned(translate_report(normalize_report(str(row["report"]))))
        from_report = bool(conditions)
    age = row.get("age")
    age = None if age is None or pd.isna(age) else int(round(float(age)))
    sex = row.get("sex")
    sex = None if sex is None or (not isinstance(sex, str) and pd.isna(sex)) else str(sex)
    return RecordQuery(str(row["record_id"]), tuple(conditions), tuple(corpus[c].name for c in conditions),
                       age, sex, tuple(f"{system}:{c}" for c in unknown), from_report)


class Describer:
    """Retrieval (cached per question and condition) + one backend; keeps the statistics."""

    def __init__(self, index: KnowledgeIndex, config: EnrichConfig, backend: Backend | None,
                 cache: PromptCache, corpus: Corpus | None = None, report: EnrichReport | None = None):
        if config.backend != "extractive" and backend is None:
            raise InputError(f"backend {config.backend!r} needs a generation model")
        self.index, self.config, self.backend, self.cache = index, config, backend, cache
        self.corpus = corpus or packaged_corpus()
        self.report = report or EnrichReport(out="")
        self._hits: dict[tuple[str, str], list[Hit]] = {}
        self._prompts: set[str] = set()
        self._known = index.conditions()

    def hits(self, query: RecordQuery) -> dict[str, list[Hit]]:
        if not self.config.retrieval:
            return {cid: [] for cid in query.conditions}
        template = template_for(query, self.config.template, self.config.seed)
        sections = WAVEFORM_SECTIONS if self.config.backend == "extractive" else None
        out = {}
        for cid, name in zip(query.conditions, query.names):
            key = (template, cid)
            if key not in self._hits:
                question = template.format(condition=name)
                where = cid if cid in self._known or self.config.backend == "extractive" else None
                self._hits[key] = self.index.query(question, self.config.top_k, condition=where, sections=sections)
                self.report.unique_queries += 1
            out[cid] = self._hits[key]
        return out

    def describe(self, query: RecordQuery) -> tuple[str, str]:
        """(description, prompt key or "" for the extractive composer); raises BackendError (the caller
        counts and skips the record)."""
        hits = self.hits(query)
        if self.config.backend == "extractive" or not query.conditions:
            text, dropped = compose_extractive(query, hits, self.corpus, seed=self.config.seed,
                                               max_sentences=self.config.max_sentences)
            self.report.unsupported_sentences_dropped += dropped
            return text, ""
        assert self.backend is not None
        prompt = build_prompt(query, hits, template_for(query, self.config.template, self.config.seed))
        key = PromptCache.key(self.backend.name, prompt)
        if key not in self._prompts:
            self._prompts.add(key)
            self.report.unique_prompts += 1  # of this process; the final count is exact across resumes
        text = self.cache.get(key)
        if text is None:
            self.report.backend_calls += 1
            text = self.backend.generate(prompt)
            self.cache.put(key, text)
        else:
            self.report.cache_hits += 1
        keep, dropped = supported_sentences(text, query.conditions, self.corpus)
        self.report.unsupported_sentences_dropped += dropped
        if not keep:
            raise BackendError(f"{self.backend.name}: every generated sentence named an unsupported finding")
        return " ".join(keep), key


def enrich_store(store: str | Path, out: str | Path, index: KnowledgeIndex, *, config: EnrichConfig | None = None,
                 backend: Backend | None = None, cache_path: str | Path | None = None, resume: bool = False,
                 overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> EnrichReport:
    """Write ``out``: ``store`` plus a ``description`` per record (see the module docstring)."""
    start = time.perf_counter()
    config = config or EnrichConfig()
    src = ECGStore(store)
    out = Path(out)
    if out.resolve() == src.path.resolve():
        raise InputError(f"{out}: the output store must differ from the input store")
    work = out / WORK
    fingerprint = {"store": str(src.path.resolve()), "records": len(src), "kb": str(index.path.resolve()),
                   "kb_chunks": len(index), "backend": config.backend, "backend_name": getattr(backend, "name", ""),
                   "config": config.__dict__}
    state = _prepare(out, work, fingerprint, resume, overwrite)
    report = EnrichReport(out=str(out), **state.get("stats", {}))
    report.resumed_from = state["done"]
    cache = PromptCache(cache_path if cache_path is not None else out / "cqa_cache.jsonl")
    describer = Describer(index, config, backend, cache, report=report)
    meta = src.meta
    unknown = Counter(report.unknown_codes)
    errors: list[dict[str, str]] = state.get("errors", [])
    n = len(meta)
    for lo in range(state["done"], n, _BATCH):
        rows = meta.iloc[lo: lo + _BATCH].to_dict("records")
        descriptions, used, keys = [], [], []
        for row in rows:
            query = record_query(row, describer.corpus)
            unknown.update(query.unknown_codes)
            report.without_conditions += not query.conditions
            report.conditions_from_report += query.from_report
            try:
                text, key = describer.describe(query)
                descriptions.append(text)
                keys.append(key)
                report.described += 1
            except BackendError as exc:
                descriptions.append("")
                keys.append("")
                errors.append({"record_id": query.record_id, "problem": str(exc)})
                report.backend_errors += 1
            used.append(list(query.conditions))
        report.records = lo + len(rows)
        report.unknown_codes = dict(unknown.most_common())
        table = pa.table({DESCRIPTION_FIELD: descriptions, CONDITIONS_FIELD: pa.array(used, pa.list_(pa.string())),
                          _PROMPT_KEY: keys})
        _atomic(work / f"batch-{lo // _BATCH:06d}.parquet", lambda p: pq.write_table(table, p))
        stats = {k: v for k, v in report.as_dict().items() if k not in ("out", "resumed_from", "seconds")}
        _atomic(work / "state.json", lambda p: p.write_text(json.dumps(
            {"fingerprint": fingerprint, "done": report.records, "stats": stats, "errors": errors})))
        if progress:
            progress(report.records, n)
    _finish(src, out, work, n, fingerprint, report, errors)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _prepare(out: Path, work: Path, fingerprint: dict[str, Any], resume: bool, overwrite: bool) -> dict[str, Any]:
    state_file = work / "state.json"
    occupied = out.exists() and any(out.iterdir())
    if occupied and resume and state_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != json.loads(json.dumps(fingerprint)):
            raise InputError(f"{out}: cannot resume: the interrupted run used other settings "
                             f"({state.get('fingerprint')}); use another --out or drop --resume")
        return state
    if occupied and not overwrite:
        hint = " or pass --resume" if state_file.is_file() else ""
        raise FileExistsError(f"{out}: output folder is not empty; choose another folder, pass --overwrite{hint}")
    if occupied:
        shutil.rmtree(out)
    work.mkdir(parents=True, exist_ok=True)
    return {"done": 0}


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # shards are never modified in place (writers replace files), so sharing is safe
    except OSError:
        shutil.copy2(src, dst)


def _finish(src: ECGStore, out: Path, work: Path, n: int, fingerprint: dict[str, Any], report: EnrichReport,
            errors: list[dict[str, str]]) -> None:
    parts = sorted(work.glob("batch-*.parquet"))
    added = pa.concat_tables([pq.read_table(p) for p in parts])
    if added.num_rows != n:
        raise InputError(f"{work}: {added.num_rows} descriptions for {n} records; rerun with --overwrite")
    report.unique_prompts = len({k for k in added.column(_PROMPT_KEY).to_pylist() if k})
    meta = pq.read_table(src.path / "metadata.parquet")
    for name in (DESCRIPTION_FIELD, CONDITIONS_FIELD):
        if name in meta.column_names:
            meta = meta.drop_columns([name])
        meta = meta.append_column(name, added.column(name))
    manifest = dict(src.manifest)
    offset = 0
    for shard in manifest["shards"]:
        _link_or_copy(src.path / shard["file"], out / shard["file"])
        k = int(shard["records"])
        part = meta.slice(offset, k)
        (out / shard["meta"]).parent.mkdir(parents=True, exist_ok=True)
        _atomic(out / shard["meta"], lambda p, t=part: pq.write_table(t, p))
        offset += k
    _atomic(out / "metadata.parquet", lambda p: pq.write_table(meta, p))
    if (src.path / "skipped.csv").is_file():
        shutil.copy2(src.path / "skipped.csv", out / "skipped.csv")
    with open(out / "enrich_errors.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["record_id", "problem"])
        writer.writeheader()
        writer.writerows(errors)
    stats = {k: v for k, v in report.as_dict().items() if k not in ("out", "seconds")}
    manifest.setdefault("text_fields", {})[DESCRIPTION_FIELD] = {
        "made_by": "ecgalign.text.cqa (ESI Cardio Query Assistant)",
        "enriched_from": fingerprint["store"],
        "knowledge_index": fingerprint["kb"],
        "backend": fingerprint["backend_name"] or fingerprint["backend"],
        **fingerprint["config"],
        "statistics": stats,
    }
    _atomic(out / "store.json", lambda p: p.write_text(json.dumps(manifest, indent=2)))
    shutil.rmtree(work)
