"""The knowledge index: chunks + embeddings in an embedded LanceDB table, top-k retrieval with filters.

ESI (section 3.1.1) kept its passages in Chroma. ecgalign uses LanceDB (extra ``cqa``): embedded (a folder,
no server), maintained, built on Arrow (already a core dependency of the toolkit), with SQL filters on
metadata columns (condition, source, section) applied before the vector search, and versioned atomic writes.
Chroma's embedded mode pulls a server stack (onnxruntime, grpc, FastAPI) the toolkit does not otherwise need;
sqlite-vec needs SQLite extension loading, which many Python builds (this one included) disable.

Index folder::

    kb.json         manifest: format, embedding model and dimension, chunk count, documents, skipped files
    chunks.lance/   the LanceDB table (id, text, title, condition, source, section, doc, vector)

``build_index`` rebuilds only what changed: a chunk's id hashes its content and metadata, so unchanged chunks
keep their vectors, new ones are embedded and removed ones deleted; another embedding model re-embeds all.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ecgalign import __version__
from ecgalign.data.errors import ECGAlignError, InputError
from ecgalign.text.cqa.chunking import Chunk, corpus_chunks, document_chunks, iter_documents
from ecgalign.text.cqa.embed import SentenceEmbedder
from ecgalign.text.cqa.knowledge import Corpus, packaged_corpus

KB_FORMAT = "ecgalign-cqa-kb"
KB_VERSION = 1
MANIFEST = "kb.json"
TABLE = "chunks"
_COLUMNS = ("id", "text", "title", "condition", "source", "section", "doc")


def _lancedb() -> Any:
    os.environ.setdefault("LANCEDB_LOG", "error")  # no Rust WARN line on stderr when a table is created
    try:
        import lancedb  # optional dependency (extra ``cqa``)
    except ImportError:
        raise ImportError("the CQA knowledge index needs LanceDB: pip install 'ecgalign[cqa]'") from None
    return lancedb


@dataclass(frozen=True)
class Hit:
    """One retrieved passage; ``score`` is the cosine similarity to the query."""

    id: str
    text: str
    title: str
    condition: str
    source: str
    section: str
    doc: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BuildReport:
    out: str
    chunks: int
    added: int
    removed: int
    unchanged: int
    documents: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _where(condition: str | Sequence[str] | None = None, source: str | None = None,
           sections: Sequence[str] | None = None) -> str | None:
    """SQL filter over metadata columns (values quoted; a list of conditions means any of them)."""

    def q(value: str) -> str:
        return "'" + str(value).replace("'", "''") + "'"

    parts = []
    if condition is not None:
        values = [condition] if isinstance(condition, str) else list(condition)
        parts.append(f"condition IN ({', '.join(q(v) for v in values)})")
    if source is not None:
        parts.append(f"source = {q(source)}")
    if sections is not None:
        parts.append(f"(section IN ({', '.join(q(s) for s in sections)}) OR source LIKE 'document:%')")
    return " AND ".join(parts) or None


class KnowledgeIndex:
    """An index folder opened for retrieval. ``query`` embeds the question with the model the index was
    built with (cached per question) and returns the ``k`` most similar chunks passing the filters."""

    def __init__(self, path: str | Path, embedder: SentenceEmbedder | None = None):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.path}: not a CQA knowledge index ({MANIFEST} is missing); "
                                    "build one with `ecgalign text kb build`")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{manifest}: corrupt index manifest: {exc}") from exc
        if self.manifest.get("format") != KB_FORMAT:
            raise InputError(f"{manifest}: format is {self.manifest.get('format')!r}, expected {KB_FORMAT!r}")
        self.table = _lancedb().connect(str(self.path)).open_table(TABLE)
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.table.count_rows())

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder(self.manifest["model"])
        return self._embedder

    def embed_query(self, text: str) -> np.ndarray:
        vec = self._vectors.get(text)
        if vec is None:
            vec = self.embedder.encode([text])[0]
            self._vectors[text] = vec
        return vec

    def query(self, text: str, k: int = 2, *, condition: str | Sequence[str] | None = None,
              source: str | None = None, sections: Sequence[str] | None = None) -> list[Hit]:
        """Top-``k`` chunks for ``text``; filters: condition id(s), exact source, packaged sections
        (user-document chunks always pass a section filter)."""
        if k < 1:
            raise InputError(f"top-k must be >= 1, got {k}")
        search = self.table.search(self.embed_query(text)).distance_type("cosine").limit(k)
        where = _where(condition, source, sections)
        if where:
            search = search.where(where, prefilter=True)
        rows = search.to_list()
        return [Hit(**{c: str(r[c]) for c in _COLUMNS}, score=1.0 - float(r["_distance"])) for r in rows]

    def conditions(self) -> set[str]:
        """Condition ids with at least one chunk."""
        return {c for c in _column(self.table, "condition") if c}


def build_index(
    out: str | Path,
    sources: Sequence[str | Path] = (),
    *,
    builtin: bool = True,
    model: str | None = None,
    embedder: SentenceEmbedder | None = None,
    corpus: Corpus | None = None,
    max_chars: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Create or update the index in ``out`` from the packaged corpus (``builtin``) and user documents
    (files or folders of .md/.txt/.pdf). A document that cannot be read is skipped, counted and reported."""
    start = time.perf_counter()
    out = Path(out)
    corpus = corpus or packaged_corpus()
    chunks: dict[str, Chunk] = {}
    if builtin:
        chunks.update((c.id, c) for c in corpus_chunks(corpus))
    skipped: list[dict[str, str]] = []
    documents: list[dict[str, Any]] = []
    for doc in iter_documents(list(sources)):
        try:
            pieces = document_chunks(doc, corpus, max_chars=max_chars)
        except (ECGAlignError, OSError, ValueError) as exc:
            skipped.append({"file": str(doc), "problem": str(exc)})
            continue
        chunks.update((c.id, c) for c in pieces)
        documents.append({"file": str(doc), "chunks": len(pieces)})
    if not chunks:
        raise InputError(f"{out}: nothing to index (no packaged corpus and no readable document)")

    embedder = embedder or SentenceEmbedder(model)
    lancedb = _lancedb()
    out.mkdir(parents=True, exist_ok=True)
    db = lancedb.connect(str(out))
    old = _read_manifest(out)
    same_model = old is not None and old.get("model") == embedder.name and old.get("dim") == embedder.dim
    existing: set[str] = set()
    if same_model and TABLE in _tables(db):
        table = db.open_table(TABLE)
        existing = set(_column(table, "id"))
    else:
        table = db.create_table(TABLE, schema=_schema(embedder.dim), mode="overwrite")
    new_ids = [i for i in chunks if i not in existing]
    gone = sorted(existing - set(chunks))
    if gone:
        for start_ in range(0, len(gone), 500):
            ids = ", ".join(f"'{i}'" for i in gone[start_: start_ + 500])  # ids are hex digests
            table.delete(f"id IN ({ids})")
    batch = 256
    for start_ in range(0, len(new_ids), batch):
        part = [chunks[i] for i in new_ids[start_: start_ + batch]]
        vectors = embedder.encode([c.embed_text for c in part])  # (n, D)
        table.add([{"id": c.id, "text": c.text, "title": c.title, "condition": c.condition, "source": c.source,
                    "section": c.section, "doc": c.doc, "vector": v.tolist()} for c, v in zip(part, vectors)])
        if progress:
            progress(min(start_ + batch, len(new_ids)), len(new_ids))
    manifest = {
        "format": KB_FORMAT,
        "version": KB_VERSION,
        "ecgalign_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": embedder.name,
        "dim": embedder.dim,
        "chunks": len(chunks),
        "builtin": builtin,
        "conditions": len({c.condition for c in chunks.values() if c.condition}),
        "documents": documents,
        "skipped": skipped,
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / MANIFEST)
    return BuildReport(str(out), len(chunks), len(new_ids), len(gone), len(chunks) - len(new_ids),
                       len(documents), skipped, round(time.perf_counter() - start, 3))


def _column(table: Any, name: str) -> list[str]:
    """One metadata column of every row, without reading the vectors."""
    return table.search().select([name]).limit(None).to_arrow().column(name).to_pylist()


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _tables(db: Any) -> list[str]:
    listed = db.list_tables()
    return list(getattr(listed, "tables", listed))


def _schema(dim: int) -> pa.Schema:
    return pa.schema([*(pa.field(c, pa.string()) for c in _COLUMNS), pa.field("vector", pa.list_(pa.float32(), dim))])
