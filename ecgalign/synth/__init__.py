"""Synthetic 12-lead ECGs with known conditions and free-text reports: the embedded default dataset.

``synthesize_record(index, seed)`` makes one record (deterministic in seed, index and config);
``synthesize(n, seed)`` yields records 0..n-1; ``SynthConfig`` sets the population (patients, condition
mix, noise). See ecgalign.synth.generate.
"""

from ecgalign.synth.conditions import CODES, DEFAULT_PREVALENCE, RHYTHMS
from ecgalign.synth.generate import SynthConfig, synthesize, synthesize_record
from ecgalign.synth.noise import NoiseConfig

__all__ = [
    "CODES",
    "DEFAULT_PREVALENCE",
    "RHYTHMS",
    "NoiseConfig",
    "SynthConfig",
    "synthesize",
    "synthesize_record",
]
