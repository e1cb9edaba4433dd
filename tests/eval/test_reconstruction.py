"""Signal recovered from printouts: SNR and limb-lead consistency against planted values."""

from __future__ import annotations

import numpy as np
import pytest

from ecgalign.data.leads import derive_limb_leads
from ecgalign.data.record import LEADS_12
from ecgalign.eval.reconstruction import reconstruction_quality
from ecgalign.data.spec import InputSpec
from ecgalign.hub.models import recover_from_printouts


class FakeImageModel:
    """reconstruct() returns the training target plus noise of a chosen power (or a chosen transform); the
    recovery (render -> reconstruct, reference in the same units) is the image models' own."""

    can_reconstruct = True

    def __init__(self, transform):
        self.input_spec = InputSpec(normalize="none", bandpass=None)
        self.transform = transform
        self._signals = None

    def render(self, signals):
        self._signals = np.asarray(signals)
        return np.zeros((len(signals), 3, 8, 8), np.float32)

    def reconstruct(self, images, batch_size=64):
        x = self._signals
        target = x / x.reshape(len(x), -1).std(axis=1)[:, None, None]
        return self.transform(target)

    def recover_signals(self, signals, batch_size=32):
        return recover_from_printouts(self.render, self.reconstruct, signals, batch_size)


def _signals(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12, 1000)).astype(np.float32)
    i, ii = x[:, 0], x[:, 1]
    for name, derived in zip(("III", "aVR", "aVL", "aVF"), derive_limb_leads(i, ii)):
        x[:, LEADS_12.index(name)] = derived  # the limb-lead laws hold exactly in the truth
    return x


def test_snr_of_planted_noise_and_consistency():
    x = _signals()
    rng = np.random.default_rng(1)
    exact = reconstruction_quality(FakeImageModel(lambda t: t), x)
    assert exact["snr_db"]["overall"]["mean_db"] == pytest.approx(120.0)  # capped, not infinite
    assert exact["lead_consistency_db"]["overall"]["mean_db"] == pytest.approx(120.0)
    # noise at 1/10 of each lead's power -> 10 dB everywhere
    noisy = reconstruction_quality(
        FakeImageModel(lambda t: t + rng.standard_normal(t.shape) * np.sqrt((t ** 2).mean(-1, keepdims=True) / 10)), x)
    for lead, v in noisy["snr_db"]["per_lead"].items():
        assert v["mean_db"] == pytest.approx(10.0, abs=0.5), lead
    # independent noise per lead breaks the limb-lead laws: consistency falls far below the truth's
    assert noisy["lead_consistency_db"]["overall"]["mean_db"] < 15
    assert noisy["reference_lead_consistency_db"]["overall"]["mean_db"] > 100
    # a zero reconstruction is 0 dB; a sign flip is -6 dB
    assert reconstruction_quality(FakeImageModel(lambda t: 0 * t), x)["snr_db"]["overall"]["mean_db"] == pytest.approx(0.0)
    flipped = reconstruction_quality(FakeImageModel(lambda t: -t), x)["snr_db"]["overall"]["mean_db"]
    assert flipped == pytest.approx(-6.02, abs=0.01)


def test_only_finite_samples_are_scored_and_models_without_a_signal_are_refused():
    from ecgalign.eval.reconstruction import _snr

    ref = np.ones((1, 2, 10))
    est = np.full((1, 2, 10), np.nan)
    est[0, 0, :5] = 1.0
    out = _snr(ref, est)
    assert out[0, 0] == 120.0 and np.isnan(out[0, 1])

    class SignalModel:
        input_spec = InputSpec()
        can_reconstruct = False

    with pytest.raises(ValueError, match="recovers no signal"):
        reconstruction_quality(SignalModel(), _signals(1))
