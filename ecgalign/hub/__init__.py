"""Trained models on disk: the run-folder format, model cards, safetensors I/O, ``load``, embedding with a
content-addressed cache, the ``Embedder`` protocol every loadable model satisfies (ecgalign's own signal and
image models, the digitiser-backed signal model, and adapters for other toolkits' checkpoints), and both towers
of an echo-aligned run (``load_echo`` -> ``EchoPairModel``)."""

from ecgalign.hub.digitized import DigitizedSignalModel
from ecgalign.hub.echo import EchoPairModel, echo_pair
from ecgalign.hub.embed import cache_key, cached_embeddings, data_fingerprint, embed_to_parquet, read_embeddings
from ecgalign.hub.embedder import INPUT_KINDS, Embedder
from ecgalign.hub.load import load, load_echo
from ecgalign.hub.models import MODEL_KINDS, ImageModel, SignalModel

__all__ = ["INPUT_KINDS", "MODEL_KINDS", "DigitizedSignalModel", "EchoPairModel", "Embedder", "ImageModel", "SignalModel",
           "cache_key", "cached_embeddings", "data_fingerprint", "echo_pair", "embed_to_parquet", "load", "load_echo",
           "read_embeddings"]
