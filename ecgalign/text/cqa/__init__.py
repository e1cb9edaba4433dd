"""CQA, the Cardio Query Assistant of ESI (Wang et al., section 3.1; appendix A): a knowledge corpus of ECG
conditions written by the project, chunked and embedded into an embedded vector index, top-k retrieval with
metadata filters, and enriched descriptions of every record of a store (offline extractive composer, a local
Hugging Face model, or any OpenAI-compatible endpoint). Needs the extra ``cqa`` (LanceDB, pypdf)."""

from ecgalign.text.cqa.backends import BackendError, HFBackend, OpenAIBackend, PromptCache
from ecgalign.text.cqa.chunking import Chunk, corpus_chunks, document_chunks
from ecgalign.text.cqa.describe import PROMPT_TEMPLATES, RecordQuery, compose_extractive
from ecgalign.text.cqa.enrich import (CONDITIONS_FIELD, DESCRIPTION_FIELD, EnrichConfig, EnrichReport,
                                      enrich_store, record_query, training_texts)
from ecgalign.text.cqa.index import Hit, KnowledgeIndex, build_index
from ecgalign.text.cqa.knowledge import Condition, Corpus, load_corpus, packaged_corpus

__all__ = [
    "CONDITIONS_FIELD",
    "DESCRIPTION_FIELD",
    "PROMPT_TEMPLATES",
    "BackendError",
    "Chunk",
    "Condition",
    "Corpus",
    "EnrichConfig",
    "EnrichReport",
    "HFBackend",
    "Hit",
    "KnowledgeIndex",
    "OpenAIBackend",
    "PromptCache",
    "RecordQuery",
    "build_index",
    "compose_extractive",
    "corpus_chunks",
    "document_chunks",
    "enrich_store",
    "load_corpus",
    "packaged_corpus",
    "record_query",
    "training_texts",
]
