"""A learned refiner that makes generated ECGs harder to tell from real ones (issue 15).

The parametric generator (``ecgalign.synth.generate``) sets every record's labels and waveform from clinical
rules; a domain classifier still tells its records from real PTB-XL (docs/results.md). Following SimGAN
(Shrivastava et al., *Learning from Simulated and Unsupervised Images through Adversarial Training*, CVPR
2017), the refiner is a small 1-D convolutional network that adds a correction to a generated record. It is
trained on *unlabeled* real records only:

- two critics try to tell refined from real: one reads the signal (the benchmark view: 100 Hz, 0.5-40 Hz,
  z-scored), one reads differentiable record statistics of the realism harness's families (band-power shares,
  lead covariance, per-lead moments, beat consistency and the median beat);
- the same statistics' means and spreads are matched to the real set's;
- identity terms keep each refined record close to what it was generated as (its z-scored view, most inside
  the QRS, and its amplitudes in mV), so the labels it was drawn with still hold. Label fidelity is measured,
  not assumed: ``benchmarks/bench_refiner.py``. Weaker identity moves records further towards real and breaks
  labels (docs/results.md).

The correction is made for the eight independent leads (I, II, V1-V6) and band-limited to 0.5-40 Hz; III, aVR,
aVL and aVF are derived from I and II again, so Einthoven's and Goldberger's relations hold exactly. At 100 Hz
the correction is learned; a record at another rate gets it resampled (Fourier) to its rate, so content above
40 Hz is the generator's own.

Nothing here is used unless asked for: ``ecgalign data refiner-fit`` trains one, ``ecgalign data synth
--refiner DIR`` applies it. Evaluate the result with the realism harness against real records that were not
used to fit it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecgalign.data.leads import complete_limb_leads, derive_limb_leads
from ecgalign.data.preprocess.filters import bandpass, resample
from ecgalign.data.record import LEADS_12
from ecgalign.synth.realism.features import FS, INDEPENDENT
from ecgalign.synth.realism.torch_features import peak_table, record_statistics, zscore

SAMPLES = 1000  # 10 s at 100 Hz
FORMAT_VERSION = 1


@dataclass
class RefinerConfig:
    """steps, batch_size, lr: training; channels, blocks, noise_channels: the refiner network (noise channels
    are random inputs, so one record can be refined several ways); the loss weights: ``identity`` (mean
    absolute change of the z-scored view, counted ``qrs_weight`` times inside the QRS, R peak -60..+80 ms),
    ``identity_mv`` (mean absolute change of I, II, V1-V6 in mV over the record's overall spread),
    ``moments`` (record statistics' mean and spread against real),
    ``adv_signal`` and ``adv_features`` (the two critics), ``mmd`` (maximum mean discrepancy of the record
    statistics against real); repeak: find the R peaks of each refined record again (as the harness will)
    rather than keep the generated record's; seed: weights and batches. The defaults keep label fidelity;
    weaker identity settings move records further towards real and break labels (docs/results.md, "A learned
    refiner"), where every setting tried is listed."""

    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-4
    channels: int = 48
    blocks: int = 6
    noise_channels: int = 4
    identity: float = 6.0
    qrs_weight: float = 5.0
    identity_mv: float = 6.0
    moments: float = 1.0
    adv_signal: float = 0.1
    adv_features: float = 0.1
    mmd: float = 0.0
    repeak: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "channels", "blocks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RefinerConfig.{name} must be a positive integer, got {getattr(self, name)}")
            setattr(self, name, int(getattr(self, name)))
        if int(self.noise_channels) < 0:
            raise ValueError(f"RefinerConfig.noise_channels must be >= 0, got {self.noise_channels}")
        self.noise_channels = int(self.noise_channels)
        for name in ("lr", "identity", "qrs_weight", "identity_mv", "moments", "adv_signal", "adv_features",
                     "mmd"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"RefinerConfig.{name} must be a finite number >= 0, got {getattr(self, name)}")
            setattr(self, name, v)
        if self.lr <= 0:
            raise ValueError(f"RefinerConfig.lr must be > 0, got {self.lr}")


# ---------------------------------------------------------------------------------------------- the view


@lru_cache(maxsize=4)
def _band_response(samples: int) -> torch.Tensor:
    """|H(f)|^2 of the benchmark filter (Butterworth order 3, 0.5-40 Hz, run forward and back at 500 Hz, as the
    ``baselines`` preset runs it at a 500 Hz source) on the rfft frequencies of ``samples`` points at 100 Hz."""
    from scipy.signal import butter, sosfreqz

    sos = butter(3, [0.5, 40.0], btype="bandpass", fs=500.0, output="sos")
    f = np.fft.rfftfreq(samples, d=1.0 / FS)
    _, h = sosfreqz(sos, worN=f, fs=500.0)
    return torch.tensor(np.abs(h) ** 2, dtype=torch.float32)


def band_limit(x: torch.Tensor) -> torch.Tensor:
    """(..., T) at 100 Hz filtered with the benchmark band-pass's zero-phase response (circular)."""
    h = _band_response(x.shape[-1]).to(x.device)
    return torch.fft.irfft(torch.fft.rfft(x, dim=-1) * h, n=x.shape[-1], dim=-1)


def band_mv(signal: np.ndarray, fs: float) -> np.ndarray:
    """(..., T) mV at ``fs`` -> band-passed with the benchmark filter (0.5-40 Hz) and taken to 100 Hz, still in
    mV: the refiner's input, in training (``synthetic_inputs``) and in use (``refine_array``)."""
    return resample(bandpass(signal, fs, 0.5, 40.0), fs, FS)


def derive_leads(ind: torch.Tensor) -> torch.Tensor:
    """(B, 8, T) leads I, II, V1-V6 -> (B, 12, T) in LEADS_12 order (III, aVR, aVL, aVF from I and II)."""
    i, ii = ind[:, 0], ind[:, 1]
    return torch.cat([torch.stack([i, ii, *derive_limb_leads(i, ii)], dim=1), ind[:, 2:]], dim=1)


# ------------------------------------------------------------------------------------ record statistics


def qrs_mask(peaks: torch.Tensor, samples: int) -> torch.Tensor:
    """(B, T) 1 within -60..+80 ms of each R peak (B, MAX_BEATS; -1 pads), else 0."""
    t = torch.arange(samples)
    p = peaks[:, :, None]
    near = (t[None, None] >= p - 6) & (t[None, None] <= p + 8) & (p >= 0)
    return near.any(1).float()


# -------------------------------------------------------------------------------------------- networks


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.a = nn.Conv1d(channels, channels, 5, padding=2 * dilation, dilation=dilation)
        self.b = nn.Conv1d(channels, channels, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.leaky_relu(self.a(F.leaky_relu(x, 0.2)), 0.2))


class Refiner(nn.Module):
    """Band-passed mV of I, II, V1-V6 at 100 Hz (B, 8, T) -> a correction in mV of the same shape. The input is
    scaled by each record's overall spread and the output scaled back, so the network is amplitude-free; the
    last layer starts at zero, so an untrained refiner changes nothing."""

    def __init__(self, channels: int = 48, blocks: int = 6, noise_channels: int = 4) -> None:
        super().__init__()
        self.noise_channels = noise_channels
        self.inp = nn.Conv1d(len(INDEPENDENT) + noise_channels, channels, 7, padding=3)
        self.blocks = nn.Sequential(*[_Block(channels, 2 ** (k % 5)) for k in range(blocks)])
        self.out = nn.Conv1d(channels, len(INDEPENDENT), 7, padding=3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        scale = x.std(dim=(1, 2), keepdim=True).clamp_min(1e-4)
        h = x / scale
        if self.noise_channels:
            noise = torch.randn(x.shape[0], self.noise_channels, x.shape[-1], generator=generator, device=x.device)
            h = torch.cat([h, noise], 1)
        delta = self.out(F.leaky_relu(self.blocks(self.inp(h)), 0.2))
        return band_limit(delta) * scale


class _SignalCritic(nn.Module):
    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv1d(12, c, 7, stride=2, padding=3), nn.LeakyReLU(0.2),
            nn.Conv1d(c, 2 * c, 7, stride=2, padding=3), nn.LeakyReLU(0.2),
            nn.Conv1d(2 * c, 2 * c, 7, stride=2, padding=3), nn.LeakyReLU(0.2),
            nn.Conv1d(2 * c, 2 * c, 7, stride=2, padding=3), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(4 * c, 1)

    def forward(self, view: torch.Tensor) -> torch.Tensor:
        h = self.net(view)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], 1)).squeeze(1)


class _FeatureCritic(nn.Module):
    def __init__(self, features: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.2), nn.Linear(hidden, 1),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).squeeze(1)


# -------------------------------------------------------------------------------------------- training


def mmd2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared maximum mean discrepancy between two samples of feature vectors (rows), Gaussian kernels at
    bandwidths 0.5, 1 and 2 times the median pairwise distance of the pooled sample (Gretton et al., JMLR
    2012): zero when the two distributions agree in every moment."""
    x = torch.cat([a, b])
    d2 = torch.cdist(x, x).pow(2)
    med = d2.detach()[d2.detach() > 0].median().clamp_min(1e-6)
    k = sum(torch.exp(-d2 / (s * med)) for s in (0.25, 1.0, 4.0))
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@dataclass
class FitResult:
    """refiner: the trained network; stats: real statistics' mean / sd (the moment targets); history: one row
    per logged step; seconds: wall time of training."""

    refiner: Refiner
    config: RefinerConfig
    stats: dict[str, np.ndarray]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def view_of(bp_ind: torch.Tensor, delta: torch.Tensor | None = None) -> torch.Tensor:
    """Benchmark view (B, 12, T) of band-passed independent leads (B, 8, T), with a refiner's correction
    ``delta`` added as a record carrying it is read: the benchmark band-pass runs over it once more."""
    x = bp_ind if delta is None else bp_ind + band_limit(delta)
    return zscore(derive_leads(x))


def _check_arrays(synth_bp: np.ndarray, real_view: np.ndarray) -> None:
    for name, a, leads in (("synthetic", synth_bp, 12), ("real", real_view, 12)):
        if a.ndim != 3 or a.shape[1] != leads or a.shape[2] != SAMPLES:
            raise ValueError(f"{name} records must be (N, {leads}, {SAMPLES}) at 100 Hz, got {a.shape}")
        if len(a) < 8:
            raise ValueError(f"{name} records: need at least 8 to fit a refiner, got {len(a)}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} records contain non-finite samples")


def fit_refiner(
    synth_bp: np.ndarray,
    real_view: np.ndarray,
    config: RefinerConfig | None = None,
    progress: Callable[[dict], None] | None = None,
    log_every: int = 50,
) -> FitResult:
    """Train a refiner. synth_bp: generated records (N, 12, 1000), mV, band-passed 0.5-40 Hz at 100 Hz (leads in
    LEADS_12 order; only I, II and V1-V6 are read). real_view: real records in the benchmark view (M, 12, 1000),
    z-scored per lead, e.g. ptbxl-unlabeled's ``X``. Real records are used without labels."""
    config = config or RefinerConfig()
    synth_bp = np.asarray(synth_bp, dtype=np.float32)
    real_view = np.asarray(real_view, dtype=np.float32)
    _check_arrays(synth_bp, real_view)
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    s_ind = torch.from_numpy(synth_bp[:, list(INDEPENDENT)].copy())
    s_peaks = torch.from_numpy(peak_table(view_of(s_ind).numpy()))
    r_view = torch.from_numpy(real_view)
    r_peaks = torch.from_numpy(peak_table(real_view))
    with torch.no_grad():
        rf = torch.cat([record_statistics(r_view[i : i + 256], r_peaks[i : i + 256])
                        for i in range(0, len(r_view), 256)])
    mu, sd = rf.mean(0), rf.std(0).clamp_min(1e-4)
    refiner = Refiner(config.channels, config.blocks, config.noise_channels)
    critic_s = _SignalCritic()
    critic_f = _FeatureCritic(rf.shape[1])
    opt_r = torch.optim.Adam(refiner.parameters(), lr=config.lr, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam([*critic_s.parameters(), *critic_f.parameters()], lr=config.lr, betas=(0.5, 0.9))
    bce = F.binary_cross_entropy_with_logits
    history: list[dict] = []
    bs = config.batch_size
    for step in range(1, config.steps + 1):
        si = torch.from_numpy(rng.choice(len(s_ind), size=bs, replace=len(s_ind) < bs))
        ri = torch.from_numpy(rng.choice(len(r_view), size=bs, replace=len(r_view) < bs))
        x, xp = s_ind[si], s_peaks[si]
        rv, rp = r_view[ri], r_peaks[ri]
        base = view_of(x)
        delta = refiner(x, gen)
        refined = view_of(x, delta)
        if config.repeak:  # beats where the harness will find them in the refined record
            xp = torch.from_numpy(peak_table(refined.detach().numpy()))
        real_f = (record_statistics(rv, rp) - mu) / sd
        ones, zeros = torch.ones(bs), torch.zeros(bs)
        adversarial = config.adv_signal > 0 or config.adv_features > 0
        loss_c = torch.zeros(())
        if adversarial:  # the critics learn first, on this step's refined records
            fake_f = (record_statistics(refined.detach(), xp) - mu) / sd
            loss_c = (bce(critic_s(rv), ones) + bce(critic_s(refined.detach()), zeros)
                      + bce(critic_f(real_f), ones) + bce(critic_f(fake_f), zeros))
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        feats = (record_statistics(refined, xp) - mu) / sd
        # Identity, in two measures: the z-scored view's change, weighted qrs_weight times inside the QRS (the
        # labels the generator claims are mostly QRS criteria: Q waves, voltages, axis, duration), so a small
        # lead's Q wave counts as much as a large lead's; and the change in mV over the record's overall spread,
        # because the view hides each lead's amplitude and amplitudes across leads carry labels (Sokolow-Lyon).
        change = (refined - base).abs()
        weight = 1 + (config.qrs_weight - 1) * qrs_mask(s_peaks[si], change.shape[-1])[:, None]
        l_id = (change * weight).mean()
        l_mv = (band_limit(delta) / x.std(dim=(1, 2), keepdim=True).clamp_min(1e-4)).abs().mean()
        l_mom = (feats.mean(0) ** 2).mean() + ((feats.std(0) - 1) ** 2).mean()
        l_as = bce(critic_s(refined), ones) if config.adv_signal > 0 else torch.zeros(())
        l_af = bce(critic_f(feats), ones) if config.adv_features > 0 else torch.zeros(())
        l_mmd = mmd2(feats, real_f) if config.mmd > 0 else torch.zeros(())
        loss = (config.identity * l_id + config.identity_mv * l_mv + config.moments * l_mom
                + config.adv_signal * l_as + config.adv_features * l_af + config.mmd * l_mmd)
        opt_r.zero_grad()
        loss.backward()
        opt_r.step()
        if step % log_every == 0 or step == config.steps:
            row = {"step": step, "identity": round(float(l_id.detach()), 4),
                   "identity_mv": round(float(l_mv.detach()), 4), "moments": round(float(l_mom.detach()), 4),
                   "adv_signal": round(float(l_as.detach()), 4), "adv_features": round(float(l_af.detach()), 4),
                   "mmd": round(float(l_mmd.detach()), 4), "critics": round(float(loss_c.detach()), 4),
                   "seconds": round(time.perf_counter() - t0, 1)}
            history.append(row)
            if progress is not None:
                progress(row)
    refiner.eval()
    return FitResult(refiner, config, {"mean": mu.numpy(), "sd": sd.numpy()}, history, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------- applying


def refine_array(refiner: Refiner, signal: np.ndarray, fs: float, seed: int = 0) -> np.ndarray:
    """One record (12, T) in mV at ``fs`` (>= 100 Hz), leads in LEADS_12 order -> the refined record, same shape.

    The correction is computed at 100 Hz on the band-passed record in 10 s windows (a shorter last window is
    padded; one under 0.5 s is left as it is) and resampled to ``fs``. ``seed`` draws the refiner's noise."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 12:
        raise ValueError(f"refine_array needs (12, T) in LEADS_12 order, got shape {x.shape}")
    if fs < FS:
        raise ValueError(f"refine_array needs records at >= {FS:g} Hz, got {fs:g} Hz")
    low = band_mv(x, fs)  # (12, T100)
    t100 = low.shape[1]
    gen = torch.Generator().manual_seed(int(seed))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one record of a small network: threads cost more than they give, in pool workers most
    try:
        delta = _correction(refiner, low, gen)
    finally:
        torch.set_num_threads(threads)
    out = x.copy()
    t = x.shape[1]
    up = np.fft.irfft(np.fft.rfft(delta, axis=-1), n=int(round(t100 * fs / FS)), axis=-1) * (fs / FS)
    up = up[:, :t] if up.shape[1] >= t else np.pad(up, ((0, 0), (0, t - up.shape[1])))
    out[list(INDEPENDENT)] += up
    return complete_limb_leads(out).astype(np.asarray(signal).dtype, copy=False)


def _correction(refiner: Refiner, low: np.ndarray, gen: torch.Generator) -> np.ndarray:
    """The refiner's correction (8, T100) of band-passed 100 Hz leads (12, T100), in 10 s windows."""
    t100 = low.shape[1]
    delta = np.zeros((len(INDEPENDENT), t100))
    with torch.no_grad():
        for start in range(0, t100, SAMPLES):
            seg = low[list(INDEPENDENT), start : start + SAMPLES]
            n = seg.shape[1]
            if n < 50:
                break
            if n < SAMPLES:
                seg = np.pad(seg, ((0, 0), (0, SAMPLES - n)), mode="reflect" if n > SAMPLES // 2 else "edge")
            d = refiner(torch.from_numpy(seg[None].astype(np.float32)), gen)[0].numpy()
            delta[:, start : start + n] = d[:, :n]
    return delta


def save_refiner(path: str | Path, fit: FitResult, info: dict | None = None) -> Path:
    """Write ``refiner.safetensors`` + ``refiner.json`` (config, history, real-statistics summary, ``info``)
    into folder ``path``; atomic per file."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "refiner.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in fit.refiner.state_dict().items()}, str(tmp))
    tmp.replace(out / "refiner.safetensors")
    meta = {"format": "ecgalign-refiner", "version": FORMAT_VERSION, "config": asdict(fit.config),
            "seconds": round(fit.seconds, 1), "history": fit.history, "leads": list(LEADS_12), "fs": FS,
            "info": info or {}}
    tmp = out / "refiner.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(out / "refiner.json")
    return out


def load_refiner(path: str | Path) -> tuple[Refiner, dict]:
    """The refiner saved at folder ``path`` (eval mode) and its metadata."""
    from safetensors.torch import load_file

    folder = Path(path)
    meta_path, weights = folder / "refiner.json", folder / "refiner.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{folder}: not a refiner folder (needs refiner.json and refiner.safetensors; "
                                "make one with `ecgalign data refiner-fit`)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != "ecgalign-refiner" or int(meta.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format {meta.get('format')!r} version {meta.get('version')!r} is not an "
                         f"ecgalign refiner this version reads (version <= {FORMAT_VERSION})")
    try:
        cfg = RefinerConfig(**meta["config"])
    except TypeError as exc:
        raise ValueError(f"{meta_path}: config does not fit this version's RefinerConfig ({exc})") from exc
    net = Refiner(cfg.channels, cfg.blocks, cfg.noise_channels)
    net.load_state_dict(load_file(str(weights)))
    net.eval()
    return net, meta


def refine_record(refiner: Refiner, record, *, seed: int = 0, index: int = 0):
    """An ECGRecord with its 12 standard leads refined (other leads, labels and report untouched); the noise the
    refiner draws is a function of (seed, index), so a store is the same for any worker count. ``extra``
    gains ``refined: True``."""
    missing = [lead for lead in LEADS_12 if lead not in record.leads]
    if missing:
        raise ValueError(f"record {record.record_id}: the refiner needs the 12 standard leads, missing {missing}")
    order = [record.leads.index(lead) for lead in LEADS_12]
    sig = np.array(record.signal, copy=True)
    sig[order] = refine_array(refiner, sig[order], record.fs, seed=int(seed) * 1_000_003 + int(index))
    return record.replace(signal=sig, extra={**(record.extra or {}), "refined": True})


def describe_refiner(path: str | Path) -> dict:
    """Provenance of a saved refiner: its folder, the sha256 of its weights, config and fit info."""
    import hashlib

    _, meta = load_refiner(path)
    digest = hashlib.sha256((Path(path) / "refiner.safetensors").read_bytes()).hexdigest()
    return {"path": str(Path(path).resolve()), "sha256": digest, "config": meta["config"], "info": meta.get("info", {})}


def synthetic_inputs(n: int, seed: int, *, workers: int = 1, config=None) -> np.ndarray:
    """(n, 12, 1000) float32: generated records ``seed`` 0..n-1, band-passed 0.5-40 Hz in mV and taken to 100 Hz,
    the refiner's training input (``fit_refiner``'s ``synth_bp``)."""
    from ecgalign.synth.generate import synthesize

    out = np.zeros((n, 12, SAMPLES), dtype=np.float32)
    for i, rec in enumerate(synthesize(n, seed, workers=workers, config=config)):
        sig = np.asarray(rec.signal, dtype=np.float64)[[rec.leads.index(lead) for lead in LEADS_12]]
        low = band_mv(sig, rec.fs)[:, :SAMPLES]
        out[i, :, : low.shape[1]] = low
    return out
