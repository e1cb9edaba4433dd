"""Realism harness: how far synthetic ECGs are from real ones (``ecgalign data realism SYNTH REAL``).

``load_sample(source)`` prepares a store, dataset folder or ``synth:N[:SEED]``; ``compare(synth, real)``
returns domain-classifier AUROCs (patient-grouped CV, four feature families), the covariance / spectral /
population signs, distributions per condition and label fidelity; ``write_html`` draws them.
"""

from ecgalign.synth.realism.compare import Realism, compare, domain_auroc
from ecgalign.synth.realism.html import render_html, write_html
from ecgalign.synth.realism.sample import Sample, load_sample, sample_of

__all__ = ["Realism", "Sample", "compare", "domain_auroc", "load_sample", "render_html", "sample_of", "write_html"]
