"""Synthetic against real: domain-classifier AUROC per feature family, the named signs, distributions per
condition, label fidelity, and whether each diagnostic class differs from the other records alike on both sides
(issue 15 of the project: synthetic ECGs a classifier cannot tell from real)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from ecgalign.synth.realism.features import (
    BANDS,
    INDEPENDENT,
    band_shares,
    correlations,
    feature_families,
    feature_names,
    pca_shares,
)
from ecgalign.synth.realism.measure import MEASURES, fidelity, measure
from ecgalign.synth.realism.sample import MV_FS, Sample

SINUS = ("SR", "SBRAD", "STACH", "SARRH")
TOLERANCE = 0.25  # a sign is "within" when synthetic / real is in [0.75, 1.25]


@dataclass
class Realism:
    """summary: JSON-able result; arrays: per-source measurement arrays for the plots."""

    summary: dict
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def domain_auroc(
    fa: np.ndarray,
    fb: np.ndarray,
    groups_a: np.ndarray,
    groups_b: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    classifier: Callable[[], ClassifierMixin] | None = None,
) -> float:
    """Out-of-fold AUROC of a classifier telling set a from set b, folds grouped by patient (a patient's records
    never sit on both sides of a split). ``classifier`` makes a fresh unfitted model per fold; the default is the
    harness's gradient boosting."""
    x = np.vstack([fa, fb]).astype(np.float64)
    y = np.r_[np.ones(len(fa)), np.zeros(len(fb))]
    g = np.r_[np.char.add("a:", groups_a.astype(str)), np.char.add("b:", groups_b.astype(str))]
    k = int(min(folds, len(fa), len(fb)))
    if k < 2:
        raise ValueError(f"domain classifier needs at least 2 records per side, got {len(fa)} and {len(fb)}")
    score = np.zeros(len(y))
    for train, test in StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(x, y, g):
        if classifier is None:
            clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=15, random_state=seed)
        else:
            clf = classifier()
        clf.fit(x[train], y[train])
        score[test] = clf.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, score))


def separating_features(fa: dict[str, np.ndarray], fb: dict[str, np.ndarray], top: int = 15) -> list[dict]:
    """The single features that tell set a from set b best: univariate AUROC (a = positive) per named feature,
    sorted by distance from 0.5, with each side's median. What to fix in the generator first."""
    rows = []
    for family, names in feature_names().items():
        for j, name in enumerate(names):
            a, b = fa[family][:, j], fb[family][:, j]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) < 2 or len(b) < 2:
                continue
            auc = float(roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b]))
            rows.append({
                "family": family, "feature": name, "auroc": round(auc, 3),
                "synthetic_median": round(float(np.median(a)), 5), "real_median": round(float(np.median(b)), 5),
            })
    rows.sort(key=lambda r: -abs(r["auroc"] - 0.5))
    return rows[:top]


CLASS_MIN_RECORDS = 10  # a class is profiled when each side has at least this many records in it and out of it
EFFECT_CAP = 10.0


def effect_sizes(f: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(F,) standardised mean difference (Cohen's d, pooled sd) of each feature between the records in a class
    and the rest, clipped to +-EFFECT_CAP (a feature without spread inside either group but different means reads
    the cap); NaN feature values are left out, a feature with no values on a side reads 0."""
    a, b = f[member], f[~member]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (no median beat anywhere)
        sd = np.sqrt(0.5 * (np.nanvar(a, axis=0) + np.nanvar(b, axis=0)))
        diff = np.nanmean(a, axis=0) - np.nanmean(b, axis=0)
        d = np.where(sd > 0, diff / sd, np.sign(diff) * EFFECT_CAP)
    return np.clip(np.where(np.isfinite(d), d, 0.0), -EFFECT_CAP, EFFECT_CAP)


def class_profiles(
    fa: dict[str, np.ndarray], fb: dict[str, np.ndarray], codes_a: list[tuple[str, ...]],
    codes_b: list[tuple[str, ...]], top: int = 5,
) -> dict[str, dict]:
    """Does each diagnostic superclass differ from the other records the same way in set a as in set b? Per
    superclass (PTB-XL's NORM, MI, STTC, CD, HYP) with at least CLASS_MIN_RECORDS records in and out of it on both
    sides: the Pearson correlation of the two sides' effect sizes over every named feature (1 = the same class
    profile), their mean |effect|, and the ``top`` features whose effects differ most. A model trained on a
    transfers where these agree; a class whose synthetic profile leans on features real records do not move is
    where transfer is lost."""
    from ecgalign.data.labels import SCPStatements

    scp = SCPStatements.bundled()
    named = feature_names()
    names = [n for fam in fa for n in named[fam]]
    xa, xb = np.hstack(list(fa.values())), np.hstack(list(fb.values()))
    sup_a = [set(scp.map_codes(c, "superdiagnostic")) for c in codes_a]
    sup_b = [set(scp.map_codes(c, "superdiagnostic")) for c in codes_b]
    out = {}
    for cls in ("NORM", "MI", "STTC", "CD", "HYP"):
        ma, mb = np.array([cls in s for s in sup_a]), np.array([cls in s for s in sup_b])
        counts = (ma.sum(), (~ma).sum(), mb.sum(), (~mb).sum())
        if min(counts) < CLASS_MIN_RECORDS:
            continue
        ea, eb = effect_sizes(xa, ma), effect_sizes(xb, mb)
        gap = np.argsort(-np.abs(ea - eb))[:top]
        out[cls] = {
            "records": {"synthetic": int(ma.sum()), "real": int(mb.sum())},
            "profile_correlation": round(float(np.corrcoef(ea, eb)[0, 1]), 3),
            "mean_abs_effect": {"synthetic": round(float(np.abs(ea).mean()), 3),
                                "real": round(float(np.abs(eb).mean()), 3)},
            "largest_differences": [{"feature": names[j], "synthetic_effect": round(float(ea[j]), 2),
                                     "real_effect": round(float(eb[j]), 2)} for j in gap],
        }
    return out


def _sign(name: str, synth: float, real: float) -> dict:
    ratio = synth / real if real else float("nan")
    return {
        "sign": name,
        "synthetic": round(synth, 5),
        "real": round(real, 5),
        "ratio": round(ratio, 3),
        "within_25pct": bool(abs(ratio - 1.0) <= TOLERANCE),
    }


def _has(codes: list[tuple[str, ...]], group: str) -> np.ndarray:
    return np.array([group in c for c in codes])


def _signs(synth: Sample, real: Sample, ms: dict[str, np.ndarray], mr: dict[str, np.ndarray]) -> list[dict]:
    ps, pr = pca_shares(synth.x), pca_shares(real.x)
    cs, cr = correlations(synth.x), correlations(real.x)
    bs, br = band_shares(synth.x), band_shares(real.x)
    iu = np.triu_indices(len(INDEPENDENT), 1)
    pair = int(np.flatnonzero((iu[0] == 0) & (iu[1] == INDEPENDENT.index(11)))[0])  # (I, V6)
    hi = BANDS.index((25.0, 40.0))
    mid = BANDS.index((8.0, 15.0))
    out = [
        _sign(
            "covariance: variance outside the first 3 PCs of I, II, V1-V6",
            float((1 - ps[:, :3].sum(1)).mean()),
            float((1 - pr[:, :3].sum(1)).mean()),
        ),
        _sign("covariance: median corr(I, V6)", float(np.median(cs[:, pair])), float(np.median(cr[:, pair]))),
        _sign("spectrum: 25-40 Hz power share", float(bs[..., hi].mean()), float(br[..., hi].mean())),
        _sign("spectrum: 8-15 Hz power share", float(bs[..., mid].mean()), float(br[..., mid].mean())),
    ]
    if ms and mr:

        def sinus(sample: Sample) -> np.ndarray:
            return np.array(
                [bool(set(c) & {"SR", "NORM"}) and not set(c) & {"AFIB", "AFLT"} for c in sample.codes]
            )

        ns, nr = _has(synth.codes, "NORM"), _has(real.codes, "NORM")
        rows = [
            ("population: sinus-rhythm RR CV (median)", np.nanmedian, "rr_cv", sinus(synth), sinus(real)),
            (
                "population: sinus-rhythm rate, 5th percentile (bpm)",
                lambda v: np.nanpercentile(v, 5),
                "hr_bpm",
                sinus(synth),
                sinus(real),
            ),
            ("population: NORM share with axis < 0 deg", lambda v: np.nanmean(v < 0), "axis_deg", ns, nr),
            (
                "population: NORM share with Sokolow-Lyon >= 3.0 mV",
                lambda v: np.nanmean(v >= 3.0),
                "sokolow_mv",
                ns,
                nr,
            ),
        ]
        for name, stat, key, sel_s, sel_r in rows:
            if sel_s.sum() >= 5 and sel_r.sum() >= 5:
                out.append(_sign(name, float(stat(ms[key][sel_s])), float(stat(mr[key][sel_r]))))
    return out


def _distributions(synth: Sample, real: Sample, ms: dict, mr: dict, min_records: int = 5) -> dict:
    from scipy.stats import ks_2samp

    groups = sorted({c for cs in real.codes for c in cs} & {c for cs in synth.codes for c in cs})
    out = {}
    for group in groups:
        s, r = _has(synth.codes, group), _has(real.codes, group)
        if s.sum() < min_records or r.sum() < min_records:
            continue
        row = {"records": {"synthetic": int(s.sum()), "real": int(r.sum())}}
        for key in MEASURES:
            a, b = ms[key][s], mr[key][r]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) < 3 or len(b) < 3:
                continue
            q = (10, 50, 90)
            row[key] = {
                "synthetic_p10_p50_p90": [round(float(v), 3) for v in np.percentile(a, q)],
                "real_p10_p50_p90": [round(float(v), 3) for v in np.percentile(b, q)],
                "ks": round(float(ks_2samp(a, b).statistic), 3),
            }
        out[group] = row
    return out


def _measures(sample: Sample) -> dict[str, np.ndarray]:
    if sample.mv is None:
        return {}
    rows = [measure(r, MV_FS) for r in sample.mv.astype(np.float64)]
    return {k: np.array([m[k] for m in rows]) for k in MEASURES}


def compare(synth: Sample, real: Sample, *, folds: int = 5, seed: int = 0) -> Realism:
    """Everything the realism report holds for ``synth`` against ``real``."""
    fs, fr = feature_families(synth.x), feature_families(real.x)
    aurocs = {
        name: round(domain_auroc(fs[name], fr[name], synth.patients, real.patients, folds, seed), 4)
        for name in fs
    }
    aurocs["all"] = round(
        domain_auroc(
            np.hstack(list(fs.values())),
            np.hstack(list(fr.values())),
            synth.patients,
            real.patients,
            folds,
            seed,
        ),
        4,
    )
    ms, mr = _measures(synth), _measures(real)
    both_mv = bool(ms and mr)
    summary = {
        "synthetic": {
            "source": synth.name,
            "records": len(synth),
            "skipped": len(synth.skipped),
            "patients": len(set(synth.patients)),
            "mV": synth.mv is not None,
        },
        "real": {
            "source": real.name,
            "records": len(real),
            "skipped": len(real.skipped),
            "patients": len(set(real.patients)),
            "mV": real.mv is not None,
        },
        "view": "100 Hz, 0.5-40 Hz band-pass, z-score per lead (BASELINES.md); measurements on mV at 250 Hz (0.5-100 Hz)",
        "domain_auroc": aurocs,
        "best_domain_auroc": max(aurocs.values()),
        "separating_features": separating_features(fs, fr),
        "class_profiles": class_profiles(fs, fr, synth.codes, real.codes),
        "signs": _signs(synth, real, ms if both_mv else {}, mr if both_mv else {}),
        "distributions": _distributions(synth, real, ms, mr) if both_mv else {},
        "label_fidelity": {
            "synthetic": fidelity(synth.codes, [dict(zip(ms, v)) for v in zip(*ms.values())], synth.likelihoods)
            if ms else {},
            "real": fidelity(real.codes, [dict(zip(mr, v)) for v in zip(*mr.values())], real.likelihoods)
            if mr else {},
        },
        "skipped_records": (synth.skipped + real.skipped)[:50],
    }
    arrays = {
        "synthetic": {**ms, "pca": pca_shares(synth.x), "bands": band_shares(synth.x).mean(1)},
        "real": {**mr, "pca": pca_shares(real.x), "bands": band_shares(real.x).mean(1)},
    }
    return Realism(summary, arrays)
