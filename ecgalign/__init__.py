"""ecgalign: multimodal ECG representation learning (ECG <-> report, printout image, echocardiogram).

``import ecgalign`` stays light: heavy parts import lazily where they are used.
"""

__version__ = "0.1.0"
