"""ECG <-> echo retrieval and shift detection (EEE, seed 003_74d6fba967a030e7, Sec. 3.4 and 4): evaluation of
both towers of an echo-aligned run on the held-out (test) patients of an echo store.

``echo-retrieval``: each study's ECG (the strips of its echo files, or its paired 12-lead ECG, per the run's
``echo.ecg_side``) and its echo sequences are embedded in the joint space; per study (and per patient) the file
embeddings are averaged and re-normalised; ECG -> echo and echo -> ECG recall@1/5/10 and median rank (1 = best,
ties count against the true match), each with a percentile-bootstrap 95 % CI over queries and the chance level.

``echo-shift``: the alignment head (strip variant) scores every test pair as it is and with its ECG rotated by
exactly k tokens inside its valid part (the training's ``shift_signals``), for each k; accuracy (logit > 0 =
"shifted") and AUROC, with bootstrap CIs over the scored pairs.

Both read the echo store from ``--echo`` (``EvalConfig.echo``), or ``--data`` when that is an echo store (the ECG
protocols then run on its paired 12-lead store, ``<DICOM root>/ecg``). The held-out part is the test part of
``evaluate``'s seeded patient-level split of the ECG dataset (the split ``echo-labels`` uses), so no patient is
in two parts; when no echo patient is in that dataset, a seeded patient-level split of the echo store itself.
``--echo-part all`` evaluates every file instead, for an echo store whose patients the run never trained on.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import patient_split
from ecgalign.echo.store import META as ECHO_META
from ecgalign.echo.store import EchoStore
from ecgalign.eval.metrics import bootstrap_ci, macro_auroc
from ecgalign.eval.protocols import Context, register_protocol
from ecgalign.eval.report import ROLE, ci_text, table
from ecgalign.hub.echo import EchoPairModel, echo_pair

KS = (1, 5, 10)


# ------------------------------------------------------------------------------------------- data
def is_echo_store(path: str | Path) -> bool:
    return (Path(path) / ECHO_META).is_file()


def paired_ecg_store(echo_store: str | Path) -> Path:
    """The 12-lead store beside the DICOMs an echo store was extracted from (``<source>/ecg``)."""
    store = EchoStore(echo_store)
    source = store.meta.get("source")
    path = Path(source) / "ecg" if source else None
    if path is None or not path.is_dir():
        raise InputError(f"{echo_store}: an echo store as --data needs its paired 12-lead store at <DICOM root>/ecg "
                         f"({path or 'the store names no source folder'} is missing); pass the ECG data as --data "
                         "and the echo store as --echo")
    return path


def _patient_key(patient) -> str:
    """MIMIC subject ids as ECG stores spell them ("p10000032", "10000032") and as echo stores hold them (int)."""
    text = str(patient)
    return text[1:] if text[:1] == "p" and text[1:].isdigit() else text


def held_out_rows(ctx: Context, store: EchoStore) -> tuple[np.ndarray, str]:
    """Echo-store rows of the held-out patients (every row with ``echo_part="all"``) and how they were chosen."""
    if getattr(ctx.config, "echo_part", "test") == "all":
        return np.arange(len(store)), "every file of the echo store (--echo-part all: a store the run never saw)"
    subjects = np.array([_patient_key(s) for s in store.items.subject_id], dtype=object)
    ids = ctx.data.patient_ids
    if ids is not None:
        test = {_patient_key(p) for p in ids[ctx.split.test] if p is not None}
        known = {_patient_key(p) for p in ids if p is not None}
        if known & set(subjects):
            rows = np.flatnonzero([s in test for s in subjects])
            return rows, f"echo files of the test patients of the evaluation split ({ctx.split_rule})"
    split = patient_split(list(subjects), seed=0)
    return split.test, ("test part of a seeded patient-level 80/10/10 split of the echo store (its patients are not "
                        "in --data)")


def _echo(ctx: Context) -> tuple[EchoStore, np.ndarray, str]:
    path = getattr(ctx.config, "echo", None)
    if not path:
        raise NotApplicableError("no echo store: pass --echo ECHO_STORE (ecgalign echo extract), or an echo store "
                                 "as --data")
    store = EchoStore(path)
    rows, rule = held_out_rows(ctx, store)
    if len(rows) < 2:
        raise NotApplicableError(f"{path}: {len(rows)} echo file(s) of held-out patients; need at least 2")
    return store, rows, rule


def _pairs(ctx: Context) -> dict[str, EchoPairModel]:
    """Both towers of each encoder of ``ctx`` (``NotApplicableError`` when the model has no echo side)."""
    return {role: echo_pair(encoder) for role, encoder in ctx.encoders.items()}


def _batch_size(ctx: Context) -> int:
    return min(int(ctx.config.batch_size), 16)  # a sequence is clips x frames x H x W: keep batches small


# ------------------------------------------------------------------------------------------- retrieval
def true_match_ranks(sim: np.ndarray) -> np.ndarray:
    """(N,) rank (1 = best) of the true item, on the diagonal, for each query row of ``sim`` (N, N); candidates
    scoring the same as the true one count against it."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be square (queries x their candidates), got {sim.shape}")
    true = np.diag(sim)
    return (sim >= true[:, None]).sum(axis=1).astype(np.int64)


def rank_metrics(ranks: np.ndarray, n_candidates: int, ks: tuple[int, ...] = KS, n_boot: int = 1000) -> dict[str, Any]:
    """Recall@k and median rank of true-match ``ranks``, each with a bootstrap 95 % CI over queries, and chance."""
    ranks = np.asarray(ranks, dtype=np.float64)
    ones = np.ones(len(ranks), dtype=bool)
    out: dict[str, Any] = {"queries": int(len(ranks)), "candidates": int(n_candidates)}
    for k in ks:
        def recall(_y, s, k=k):
            return float((s[:, 0] <= k).mean())
        out[f"recall@{k}"] = float((ranks <= k).mean())
        out[f"recall@{k}_ci95"] = bootstrap_ci(ones, ranks, recall, n_boot=n_boot).to_dict()
        out[f"chance_recall@{k}"] = min(k, n_candidates) / n_candidates
    out["median_rank"] = float(np.median(ranks))
    median = bootstrap_ci(ones, ranks, lambda _y, s: float(np.median(s[:, 0])), n_boot=n_boot)
    out["median_rank_ci95"] = median.to_dict()
    out["chance_median_rank"] = (n_candidates + 1) / 2
    return out


def group_means(z: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct groups, (G, D) L2-normalised mean of the rows of each group)."""
    keys, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(keys), z.shape[1]))
    np.add.at(sums, inverse, z)
    return keys, sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(min=1e-12)


def cross_modal_retrieval(z_ecg: np.ndarray, z_echo: np.ndarray, groups: np.ndarray, ks: tuple[int, ...] = KS,
                          n_boot: int = 1000) -> dict[str, Any]:
    """ECG -> echo and echo -> ECG retrieval between the group means (e.g. per study) of paired embeddings."""
    keys, ecg = group_means(z_ecg, groups)
    _, echo = group_means(z_echo, groups)
    if len(keys) < 2:
        raise NotApplicableError(f"retrieval needs at least 2 groups, got {len(keys)}")
    sim = ecg @ echo.T  # (G, G): ECG query x echo candidate
    return {"ecg_to_echo": rank_metrics(true_match_ranks(sim), len(keys), ks, n_boot),
            "echo_to_ecg": rank_metrics(true_match_ranks(sim.T), len(keys), ks, n_boot)}


def embed_rows(pair: EchoPairModel, store: EchoStore, rows: np.ndarray, batch_size: int = 16) -> dict[str, np.ndarray]:
    """Joint-space embeddings and ids of the echo-store ``rows`` (files without a paired ECG are left out)."""
    seq = pair.sequences(store)
    position = {int(r): k for k, r in enumerate(seq.rows)}
    positions = np.array([position[int(r)] for r in rows if int(r) in position], dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {"z_ecg": [], "z_echo": [], "study_id": [], "patient_id": []}
    for batch in pair.batches(seq, positions, batch_size):
        z = pair.embed(batch)
        for key in ("z_ecg", "z_echo"):
            parts[key].append(z[key])
        for key in ("study_id", "patient_id"):
            parts[key].append(batch[key].cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}


def _retrieval_rows(block: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, res in block.items():
        if not isinstance(res, dict) or "files" not in res:
            if isinstance(res, dict) and "skipped" in res:
                rows.append({"encoder": ROLE.get(role, role), "note": res["skipped"]})
            continue
        for level in ("study", "patient"):
            for direction, label in (("ecg_to_echo", "ECG → echo"), ("echo_to_ecg", "echo → ECG")):
                m = res[level].get(direction) if "skipped" not in res[level] else None
                if m is None:
                    rows.append({"encoder": ROLE.get(role, role), "level": level, "note": res[level].get("skipped")})
                    continue
                row = {"encoder": ROLE.get(role, role), "level": level, "direction": label,
                       "candidates": m["candidates"]}
                for k in KS:
                    row[f"R@{k}"] = m[f"recall@{k}"]
                    row[f"R@{k} 95% CI"] = ci_text(m[f"recall@{k}_ci95"])
                    row[f"chance R@{k}"] = m[f"chance_recall@{k}"]
                row.update({"median rank": m["median_rank"], "median rank CI": ci_text(m["median_rank_ci95"]),
                            "chance median rank": m["chance_median_rank"]})
                rows.append(row)
    return rows


def _retrieval_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    where = f'{html.escape(str(block.get("split")))}; echo store {html.escape(str(block.get("echo")))}'
    return (f'<p class="note">{where}. '
            "Per study (patient), the mean of its files' joint-space embeddings on each side; rank 1 = best, ties "
            "count against the true match; bootstrap 95% CI over queries.</p>" + table(_retrieval_rows(block)))


@register_protocol("echo-retrieval", key="echo_retrieval", title="ECG ↔ echo retrieval", section=_retrieval_section,
                   options=("echo", "echo_part"),
                   summary="ECG <-> echo retrieval (recall@1/5/10, median rank) at study and patient level on the "
                           "held-out patients of an echo store (EEE runs).")
def echo_retrieval_protocol(ctx: Context) -> dict[str, Any]:
    pairs = _pairs(ctx)
    store, rows, rule = _echo(ctx)
    out: dict[str, Any] = {"split": rule, "echo": str(store.path)}
    for role, pair in pairs.items():
        z = embed_rows(pair, store, rows, _batch_size(ctx))
        entry: dict[str, Any] = {"ecg_side": pair.ecg_side, "files": int(len(z["z_ecg"]))}
        for level, key in (("study", "study_id"), ("patient", "patient_id")):
            try:
                entry[level] = cross_modal_retrieval(z["z_ecg"], z["z_echo"], z[key], n_boot=ctx.config.n_boot)
            except NotApplicableError as exc:
                entry[level] = {"skipped": str(exc)}
        out[role] = entry
    return out


# ------------------------------------------------------------------------------------------- shift detection
def shift_scores(aligned: np.ndarray, shifted: np.ndarray, n_boot: int = 1000) -> dict[str, Any]:
    """Accuracy (logit > 0 = shifted) and AUROC of head logits on aligned vs shifted pairs, bootstrap 95 % CIs."""
    y = np.concatenate([np.zeros(len(aligned)), np.ones(len(shifted))]).astype(bool)
    s = np.concatenate([aligned, shifted]).astype(np.float64)

    def accuracy(yy, ss):
        return float(((ss[:, 0] > 0) == yy[:, 0]).mean())

    return {"pairs": int(len(aligned)), "accuracy": accuracy(y[:, None], s[:, None]),
            "accuracy_ci95": bootstrap_ci(y, s, accuracy, n_boot=n_boot).to_dict(),
            "aligned_called_aligned": float((aligned <= 0).mean()) if len(aligned) else None,
            "shifted_called_shifted": float((shifted > 0).mean()) if len(shifted) else None,
            "auroc": macro_auroc(y, s), "auroc_ci95": bootstrap_ci(y, s, macro_auroc, n_boot=n_boot).to_dict()}


def shift_detection(pair: EchoPairModel, store: EchoStore, rows: np.ndarray, n_boot: int = 1000,
                    batch_size: int = 16) -> dict[str, Any]:
    """Per shift size k = 1 .. clips - 1 tokens (and pooled over k): the head's accuracy and AUROC."""
    if not pair.has_alignment_head:
        raise NotApplicableError(pair.no_head_reason())
    seq = pair.sequences(store)
    position = {int(r): k for k, r in enumerate(seq.rows)}
    positions = np.array([position[int(r)] for r in rows if int(r) in position], dtype=np.int64)
    sizes = range(1, pair.clips)
    logits: dict[int, dict[str, list[np.ndarray]]] = {k: {"aligned": [], "shifted": []} for k in sizes}
    for batch in pair.batches(seq, positions, batch_size):
        aligned = pair.align_logits(batch)  # (B,) the pairs as they are, once for every shift size
        for k in sizes:
            moved, rotated = pair.shift_tokens(batch, k)
            logits[k]["aligned"].append(aligned[rotated])
            logits[k]["shifted"].append(pair.align_logits(batch, moved)[rotated])
    out: dict[str, Any] = {"token_seconds": float(seq.token_s), "by_shift": {}}
    pooled: dict[str, list[np.ndarray]] = {"aligned": [], "shifted": []}
    for k in sizes:
        aligned, shifted = (np.concatenate(logits[k][key]) for key in ("aligned", "shifted"))
        if len(aligned) == 0:
            out["by_shift"][str(k)] = {"skipped": f"no held-out file holds more than {k} tokens"}
            continue
        out["by_shift"][str(k)] = shift_scores(aligned, shifted, n_boot)
        pooled["aligned"].append(aligned)
        pooled["shifted"].append(shifted)
    if not pooled["aligned"]:
        raise NotApplicableError("no held-out file holds two tokens: nothing to shift")
    out["all_shifts"] = shift_scores(np.concatenate(pooled["aligned"]), np.concatenate(pooled["shifted"]), n_boot)
    return out


def _shift_rows(block: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, res in block.items():
        if not isinstance(res, dict) or ("by_shift" not in res and "skipped" not in res):
            continue
        if "skipped" in res:
            rows.append({"encoder": ROLE.get(role, role), "note": res["skipped"]})
            continue
        for k, m in [*res["by_shift"].items(), ("all", res["all_shifts"])]:
            if "skipped" in m:
                rows.append({"encoder": ROLE.get(role, role), "shift (tokens)": k, "note": m["skipped"]})
                continue
            rows.append({"encoder": ROLE.get(role, role), "shift (tokens)": k, "pairs": m["pairs"],
                         "accuracy": m["accuracy"], "accuracy CI": ci_text(m["accuracy_ci95"]),
                         "AUROC": m["auroc"], "AUROC CI": ci_text(m["auroc_ci95"])})
    return rows


def _shift_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    return (f'<p class="note">{html.escape(str(block.get("split")))}. Each held-out pair scored as it is and with '
            "its ECG strip rotated by k whole tokens; accuracy at logit 0 over both, AUROC aligned vs shifted; "
            "bootstrap 95% CI over scored pairs.</p>" + table(_shift_rows(block)))


@register_protocol("echo-shift", key="echo_shift", title="ECG-echo shift detection", section=_shift_section,
                   options=("echo", "echo_part"),
                   summary="Alignment-head accuracy and AUROC on aligned vs shifted ECG-echo pairs per shift size "
                           "(EEE strip runs).")
def echo_shift_protocol(ctx: Context) -> dict[str, Any]:
    pairs = _pairs(ctx)
    if not pairs["model"].has_alignment_head:
        raise NotApplicableError(pairs["model"].no_head_reason())
    store, rows, rule = _echo(ctx)
    out: dict[str, Any] = {"split": rule, "echo": str(store.path)}
    for role, pair in pairs.items():
        out[role] = shift_detection(pair, store, rows, ctx.config.n_boot, _batch_size(ctx))
    return out
