"""Synthetic echo DICOMs carrying an ECG strip, paired with 12-lead ECGs: the embedded default for EEE.

``synthesize_echo(out, n_patients, seed)`` writes a MIMIC-IV-ECHO-like folder (see ecgalign.synth.echo.generate);
``EchoSynthConfig`` sets frame size, clip lengths, frame rates, planted-defect share and compression.
"""

from ecgalign.synth.echo.generate import EchoSynthConfig, synthesize_echo
from ecgalign.synth.echo.heart import LABELS, PHENOTYPES
from ecgalign.synth.echo.render import DEFECTS

__all__ = ["DEFECTS", "LABELS", "PHENOTYPES", "EchoSynthConfig", "synthesize_echo"]
