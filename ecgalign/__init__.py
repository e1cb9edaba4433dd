"""ecgalign: multimodal ECG representation learning (ECG <-> report, printout image, echocardiogram).

``import ecgalign`` stays light: heavy parts import lazily where they are used.
"""

__version__ = "0.1.0"


def load(path, device=None):
    """Load a trained model or run folder: ``m = ecgalign.load(RUN)``; ``m.encode_ecg(x)``, ``m.encode_text([...])``,
    ``m.features(x)``. See ecgalign.models.card."""
    from ecgalign.models.card import load as _load

    return _load(path, device)
