"""How far can matching the synthetic median beat to real beats take the domain classifier? (issue 15, diagnosis)

The realism harness's shape family (per-lead statistics + the QRS-aligned median beat of I, II, V1-V6 on the
benchmark view) separates synthetic from real PTB-XL at AUROC ~0.99, and passes that fixed named signs moved it by
under 0.01. This bench asks whether a correction of each synthetic record's beats *fitted on real records* would
close the gap, before any such correction is built into the generator. It works on the benchmark view (100 Hz,
0.5-40 Hz, z-scored per lead), where the harness measures, and adds a per-record correction of the median beat to
every beat of the record (at the harness's own R peaks, Hann-tapered at the window's ends), then measures:

- ``reference``: real against real, a disjoint part of ``--fit-real`` against ``--real`` (the harness's floor:
  two samples of PTB-XL are not indistinguishable either);
- ``baseline``: the generator as it is;
- ``mean``: every synthetic record's beats moved by the difference of the mean median beats (real - synthetic);
- ``coral``: each record's median beat mapped so that the synthetic mean and covariance become the real ones
  (correlation alignment, m' = mu_r + C_r^1/2 C_s^-1/2 (m - mu_s), 8 independent leads, the limb leads
  derived), the best any second-moment model of real beats could do;
- ``coral_features``: the same map applied to the median-beat features directly (no re-measurement), AUROC of
  the median-beat features alone (gradient boosting, and a logistic regression on the same folds);
- ``texture_K``: each record given the part of a random real median beat outside the first K principal
  components of real beats (real detail on the synthetic low-order shape);
- ``swap_random`` / ``swap_nearest``: each record's median beat replaced by a whole real one (every beat moved by
  real - synthetic median), a random real record's or the nearest one to the record's ``coral`` image. This is
  the bound for any model of real median beats, however good: what is left is outside the median beat.

Everything real that is fitted (means, covariances, components, textures) comes from ``--fit-real`` (default the
1,569 unlabeled records, split in half: one half fits, the other is the reference sample); the synthetic side is
fitted on a different seed from the one measured. With ``--transfer`` the bench also trains the harness-feature
logistic regression of bench_realism.py on ``coral``-corrected synthetic records and scores it on ``--real``.

    python benchmarks/bench_beat_matching.py --real ../shared/data/ptbxl-500 \
        --fit-real ../shared/data/ptbxl-unlabeled [--n 500] [--transfer --n-train 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecgalign.data.leads import derive_limb_leads
from ecgalign.synth.realism import load_sample
from ecgalign.synth.realism.compare import domain_auroc
from ecgalign.synth.realism.features import _POST, _PRE, INDEPENDENT, beat_matrix, feature_families, r_peaks

_WIN = _PRE + _POST
_TAPER_N = 8  # 80 ms Hann ramps at both ends of the 700 ms window


def _taper() -> np.ndarray:
    t = np.ones(_WIN)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(_TAPER_N) / _TAPER_N)
    t[:_TAPER_N], t[-_TAPER_N:] = ramp, ramp[::-1]
    return t


def median_beats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 12, 70) median beat of each record of the view x (N, 12, 1000) and which records had >= 2 beats."""
    out, ok = np.zeros((len(x), 12, _WIN)), np.zeros(len(x), dtype=bool)
    for i, r in enumerate(x):
        b = beat_matrix(r, r_peaks(r))
        if len(b) >= 2:
            out[i], ok[i] = np.median(b, axis=0), True
    return out, ok


def _flat(m: np.ndarray) -> np.ndarray:
    return m[:, INDEPENDENT].reshape(len(m), -1)


def _twelve(d8: np.ndarray) -> np.ndarray:
    """(8, T) corrections of I, II, V1-V6 -> (12, T), the limb leads derived (Einthoven / Goldberger)."""
    d = np.zeros((12, d8.shape[-1]))
    d[INDEPENDENT] = d8
    d[2:6] = derive_limb_leads(d8[0], d8[1])
    return d


def add_to_beats(x: np.ndarray, corrections: list[np.ndarray | None]) -> np.ndarray:
    """Add each record's (12, 70) correction at every R peak of the record, then z-score again per lead."""
    y = x.astype(np.float64, copy=True)
    taper = _taper()
    for i, (r, d) in enumerate(zip(x, corrections)):
        if d is None:
            continue
        d = d * taper
        for q in r_peaks(r):
            lo, hi = q - _PRE, q + _POST
            a, b = max(lo, 0), min(hi, r.shape[1])
            y[i, :, a:b] += d[:, a - lo : b - lo]
        y[i] = (y[i] - y[i].mean(1, keepdims=True)) / np.maximum(y[i].std(1, keepdims=True), 1e-9)
    return y.astype(np.float32)


def _sqrtm(c: np.ndarray, inverse: bool = False, floor: float = 1e-3) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    w = np.maximum(w, floor * w.max())
    return (v * w ** (-0.5 if inverse else 0.5)) @ v.T


def _logistic():
    """domain_auroc's folds with a logistic regression instead of boosting (a record with < 2 beats has no median
    beat: its NaN features count as 0)."""
    return make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), StandardScaler(),
                         LogisticRegression(C=0.1, max_iter=3000))


def aurocs(fa: dict, fb: dict, ga: np.ndarray, gb: np.ndarray) -> dict[str, float]:
    out = {k: round(domain_auroc(fa[k], fb[k], ga, gb), 3) for k in fa}
    out["all"] = round(domain_auroc(np.hstack(list(fa.values())), np.hstack(list(fb.values())), ga, gb), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="real records measured against, e.g. ../shared/data/ptbxl-500")
    ap.add_argument("--fit-real", required=True, help="real records the corrections are fitted on (disjoint)")
    ap.add_argument("--n", type=int, default=500, help="synthetic records measured")
    ap.add_argument("--seed", type=int, default=0, help="seed of the measured synthetic records")
    ap.add_argument("--fit-seed", type=int, default=7, help="seed of the synthetic records the maps are fitted on")
    ap.add_argument("--texture-k", default="5,15,40", help="principal components kept out of the texture")
    ap.add_argument("--transfer", action="store_true", help="also the transfer of bench_realism.py, coral-corrected")
    ap.add_argument("--n-train", type=int, default=2000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    real = load_sample(args.real)
    fit_real = load_sample(args.fit_real)
    synth = load_sample(f"synth:{args.n}:{args.seed}")
    fit_synth = load_sample(f"synth:{args.n}:{args.fit_seed}")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(fit_real))
    ref_idx, fit_idx = perm[: min(args.n, len(perm) // 2)], perm[len(perm) // 2 :]

    fr = feature_families(real.x)
    out: dict = {"benchmark": "beat_matching", "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                 "records": {"real": len(real), "fit_real": int(len(fit_idx)), "reference": int(len(ref_idx)),
                             "synthetic": len(synth), "fit_synthetic": len(fit_synth)}}
    out["reference"] = aurocs(feature_families(fit_real.x[ref_idx]), fr, fit_real.patients[ref_idx], real.patients)
    out["baseline"] = aurocs(feature_families(synth.x), fr, synth.patients, real.patients)

    mr, okr = median_beats(fit_real.x[fit_idx])
    ms, oks = median_beats(fit_synth.x)
    fr8, fs8 = _flat(mr[okr]), _flat(ms[oks])
    mu_r, mu_s = fr8.mean(0), fs8.mean(0)
    m0, ok0 = median_beats(synth.x)

    mean_d = _twelve((mu_r - mu_s).reshape(8, _WIN))
    out["mean"] = aurocs(feature_families(add_to_beats(synth.x, [mean_d if k else None for k in ok0])), fr,
                         synth.patients, real.patients)

    a = _sqrtm(np.cov(fr8.T)) @ _sqrtm(np.cov(fs8.T), inverse=True)

    def coral(m: np.ndarray) -> np.ndarray:
        f = m[INDEPENDENT].ravel()
        return _twelve((mu_r + a @ (f - mu_s) - f).reshape(8, _WIN))

    def coral_x(x: np.ndarray, beats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        m, ok = median_beats(x) if beats is None else beats
        return add_to_beats(x, [coral(mi) if k else None for mi, k in zip(m, ok)])

    out["coral"] = aurocs(feature_families(coral_x(synth.x, (m0, ok0))), fr, synth.patients, real.patients)
    # the median-beat features of the harness are every second sample of the 8 leads
    f_c = (mu_r + (_flat(m0[ok0]) - mu_s) @ a.T).reshape(-1, 8, _WIN)[:, :, ::2].reshape(int(ok0.sum()), -1)
    f_0 = _flat(m0[ok0]).reshape(-1, 8, _WIN)[:, :, ::2].reshape(int(ok0.sum()), -1)
    n_med = f_c.shape[1]
    real_med = fr["shape"][:, -n_med:]
    out["median_beat_features_only"] = {
        "baseline": round(domain_auroc(f_0, real_med, synth.patients[ok0], real.patients), 3),
        "coral_features": round(domain_auroc(f_c, real_med, synth.patients[ok0], real.patients), 3),
        "baseline_logistic": round(domain_auroc(f_0, real_med, synth.patients[ok0], real.patients,
                                                classifier=_logistic), 3),
        "coral_features_logistic": round(domain_auroc(f_c, real_med, synth.patients[ok0], real.patients,
                                                      classifier=_logistic), 3),
    }

    centred = fr8 - mu_r
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    tex_rng = np.random.default_rng(1)
    for k in (int(s) for s in args.texture_k.split(",") if s):
        resid = centred - centred @ vt[:k].T @ vt[:k]
        corr = [_twelve(resid[tex_rng.integers(len(resid))].reshape(8, _WIN)) if ok else None for ok in ok0]
        out[f"texture_{k}"] = aurocs(feature_families(add_to_beats(synth.x, corr)), fr, synth.patients, real.patients)

    fr12 = mr[okr]
    mapped = mu_r + (_flat(m0) - mu_s) @ a.T  # each record's coral image
    d2 = (mapped**2).sum(1)[:, None] - 2 * mapped @ fr8.T + (fr8**2).sum(1)[None, :]
    nearest = d2.argmin(1)
    swap_rng = np.random.default_rng(2)
    for name, pick in (("swap_random", swap_rng.integers(len(fr12), size=len(m0))), ("swap_nearest", nearest)):
        corr = [fr12[j] - m0[i] if ok0[i] else None for i, j in enumerate(pick)]
        out[name] = aurocs(feature_families(add_to_beats(synth.x, corr)), fr, synth.patients, real.patients)
    out["swap_nearest_distinct_real_beats"] = int(len(np.unique(nearest[ok0])))

    if args.transfer:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from bench_realism import transfer

        train = load_sample(f"synth:{args.n_train}:{args.seed + 1}")
        keys = ("C", "real_pooled_macro_auroc", "real_per_class_auroc")
        base = transfer(train, real, False)["handcrafted_logreg"]
        fixed = types.SimpleNamespace(x=coral_x(train.x), codes=train.codes, patients=train.patients)
        cor = transfer(fixed, real, False)["handcrafted_logreg"]
        out["transfer"] = {
            name: {**{k: r[k] for k in keys},
                   "every_C": {c: v["real_pooled_macro_auroc"] for c, v in r["every_C"].items()}}
            for name, r in (("baseline", base), ("coral", cor))
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
