"""Trained models on disk: the run-folder format, model cards, safetensors I/O, ``load``, embedding with a
content-addressed cache, and the ``Embedder`` protocol every loadable model satisfies (ecgalign's own signal
and image models, the digitiser-backed signal model, and adapters for other toolkits' checkpoints)."""

from ecgalign.hub.digitized import DigitizedSignalModel
from ecgalign.hub.embed import cache_key, cached_embeddings, data_fingerprint, embed_to_parquet, read_embeddings
from ecgalign.hub.embedder import INPUT_KINDS, Embedder
from ecgalign.hub.load import load
from ecgalign.hub.models import MODEL_KINDS, ImageModel, SignalModel

__all__ = ["INPUT_KINDS", "MODEL_KINDS", "DigitizedSignalModel", "Embedder", "ImageModel", "SignalModel", "cache_key",
           "cached_embeddings", "data_fingerprint", "embed_to_parquet", "load", "read_embeddings"]
