"""Evaluation protocols (plain functions in a registry, CLI on top) on any ``ecgalign.hub.Embedder``.
Importing this package registers the built-in protocols (``ecgalign.eval.builtin``) and report generation
(``ecgalign.eval.generation``)."""

from ecgalign.eval import builtin as _builtin  # noqa: F401  (registers the built-in protocols)
from ecgalign.eval import generation as _generation  # noqa: F401  (registers "generate")
from ecgalign.eval import finetune as _finetune  # noqa: F401  (registers fine-tune and echo-labels)
from ecgalign.eval import echo as _echo  # noqa: F401  (registers echo-retrieval and echo-shift)
