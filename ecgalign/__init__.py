"""ecgalign: multimodal ECG representation learning (ECG <-> report, printout image, echocardiogram).

``import ecgalign`` stays light (no torch): ``ecgalign.load`` imports the model hub on first use.
"""

import importlib

from ecgalign._version import __version__


def load(path, device=None):
    """Load a trained model or run folder: ``m = ecgalign.load(RUN)``; ``m.encode_ecg(x)``, ``m.encode_text([...])``,
    ``m.features(x)``. See ecgalign.hub."""
    return importlib.import_module("ecgalign.hub").load(path, device)  # lazy: the hub needs torch

__all__ = ["__version__", "load"]
