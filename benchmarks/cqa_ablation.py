"""Does CQA help? ESI pretrained on one synthetic store with different texts, evaluated on ptbxl-500 (issue 13).

Arms (ESI, Wang et al., seed 004_2801d33a44395bcd, section 5.1 Table 5a and appendix A):

- ``report``: the store's reports (ESI without CQA);
- ``cqa``: CQA descriptions, extractive backend, top-k 2, rephrased prompts (``--template vary``);
- ``label_names``: the names of the record's SCP codes only;
- ``topk1`` / ``topk4`` / ``topk8``: CQA with top-k 1 / 4 / 8 (appendix A.1);
- ``kb_off``: CQA with the knowledge base off (``--no-retrieval``, appendix A.2's "no textbook"): the extractive
  composer then writes the demographic sentence and the condition names, no retrieved passage;
- ``fixed_prompt``: CQA with prompt rephrasings off (``--template 0``, ESI's own question only; appendix A.3).

Every arm: the same store, seed, steps and model. Arms whose training texts are identical to an earlier arm's
(sha256 of the texts) are not trained again: they point at that arm's run (``same_texts_as``). Each arm is
evaluated with the linear probe (10-fold CV by strat_fold, 100 % labels, 3 seeds, BASELINES.md) and zero-shot
on ptbxl-500 superdiagnostic; pooled macro AUROC with bootstrap 95 % CIs; the random-init encoder of the same
architecture once. Resumable: every step whose output exists is skipped. Runs one job at a time.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/cqa_ablation.py --work /tmp/cqa-ab-runs \\
        --ptbxl ../shared/data/ptbxl-500 [--records 2000] [--steps 200] [--arms report,cqa,...]

Prints the table as JSON and writes it to WORK/cqa_ablation.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ecgalign.data.store import ECGStore
from ecgalign.data.texts import record_texts

# arm -> (text_field, enrich options or None for the base store)
ARMS: dict[str, tuple[str, list[str] | None]] = {
    "report": ("report", None),
    "cqa": ("description", ["--top-k", "2", "--template", "vary"]),
    "label_names": ("label_names", None),
    "kb_off": ("description", ["--no-retrieval"]),
    "fixed_prompt": ("description", ["--top-k", "2", "--template", "0"]),
    "topk1": ("description", ["--top-k", "1", "--template", "vary"]),
    "topk4": ("description", ["--top-k", "4", "--template", "vary"]),
    "topk8": ("description", ["--top-k", "8", "--template", "vary"]),
}
# the tiny ConvNeXt of docs/results.md's CPU runs; the compact caption vocabulary (the default)
MODEL = ["--set", "model.encoder_kwargs.depths=[1,1,2,1]", "--set", "model.encoder_kwargs.dims=[32,64,96,128]",
         "--set", "model.captioner.dim=64", "--set", "model.captioner.depth=1", "--set", "model.captioner.heads=2"]


def _cli(*args: str, log: Path) -> str:
    """Run ``ecgalign ARGS`` (one job), appending its output to ``log``; its stdout on success."""
    cmd = [sys.executable, "-m", "ecgalign.cli.main", *args]
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True)
        fh.write(done.stdout + f"[{time.perf_counter() - t0:.1f} s, rc={done.returncode}]\n")
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return done.stdout


def _texts_hash(store: Path, field: str) -> str:
    texts = record_texts(ECGStore(store), field)
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()


def _auroc(block: dict[str, Any]) -> dict[str, Any]:
    """Pooled macro AUROC [95 % CI] (and, for the linear probe, the fold mean ± SD) of one encoder's entry."""
    if "fractions" in block:  # linear probe, cross-validated: the 100 % label fraction
        frac = next(f for f in block["fractions"] if float(f["fraction"]) == 1.0)
        pooled = frac["pooled"]
        out = {"fold_mean": frac["fold_mean"]["macro_auroc"], "fold_sd": frac["fold_sd"]["macro_auroc"]}
    else:  # zero-shot
        pooled, out = block, {}
    ci = pooled.get("macro_auroc_ci95") or {}
    return {"pooled": pooled["macro_auroc"], "ci95": [ci.get("low"), ci.get("high")], **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for stores, runs and evaluations")
    parser.add_argument("--ptbxl", type=Path, required=True, help="ptbxl-500 folder (evaluation)")
    parser.add_argument("--records", type=int, default=2000, help="synthetic pretraining records")
    parser.add_argument("--steps", type=int, default=200, help="pretraining steps (batch 32)")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms, in order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    work = args.work
    (work / "stores").mkdir(parents=True, exist_ok=True)
    (work / "runs").mkdir(exist_ok=True)
    log = work / "cqa_ablation.log"
    base, kb = work / "stores" / "synth", work / "kb"
    if not (base / "store.json").is_file():
        _cli("data", "synth", "--n", str(args.records), "--seed", str(args.seed), "--out", str(base),
             "--preset", "baselines", "--workers", "1", "--overwrite", log=log)
    if not (kb / "kb.json").is_file():
        _cli("text", "kb", "build", "--out", str(kb), "--json", log=log)
    summary_path = work / "cqa_ablation.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.update({"records": args.records, "steps": args.steps, "batch_size": 32, "seed": args.seed,
                    "model": " ".join(MODEL)})
    arms_out: dict[str, Any] = summary.setdefault("arms", {})
    trained: dict[str, str] = {}  # texts hash -> arm whose run holds it
    for arm in arms:
        field, enrich = ARMS[arm]
        store = base
        entry: dict[str, Any] = arms_out.setdefault(arm, {})
        if enrich is not None:
            store = work / "stores" / arm
            if not (store / "store.json").is_file():
                stats = json.loads(_cli("text", "enrich", str(base), "--out", str(store), "--kb", str(kb),
                                        "--seed", str(args.seed), "--overwrite", "--json", *enrich, log=log))
                entry["enrich"] = {k: stats[k] for k in ("described", "unique_queries", "unsupported_sentences_dropped",
                                                         "backend_errors", "seconds")}
        entry.update({"text_field": field, "store": str(store), "enrich_options": enrich or []})
        texts = record_texts(ECGStore(store), field)
        entry["mean_words"] = round(sum(len(t.split()) for t in texts) / len(texts), 1)
        entry["distinct_texts"] = len(set(texts))
        digest = _texts_hash(store, field)
        if digest in trained:
            entry["same_texts_as"] = trained[digest]
            entry["run"] = arms_out[trained[digest]]["run"]
            for key in ("linear_probe", "zero_shot", "random_init", "pretrain_seconds"):
                if key in arms_out[trained[digest]]:
                    entry[key] = arms_out[trained[digest]][key]
            summary_path.write_text(json.dumps(summary, indent=2))
            continue
        trained[digest] = arm
        run = work / "runs" / arm
        entry["run"] = str(run)
        if not (run / "model.json").is_file():
            t0 = time.perf_counter()
            _cli("pretrain", "--recipe", "esi", "--data", str(store), "--out", str(run), "--overwrite",
                 "--no-progress", "--threads", "1", "--max-steps", str(args.steps), "--batch-size", "32",
                 "--set", f"data.text_field={field}", "--set", "optim.lr=1e-3", "--set", "optim.warmup_steps=30",
                 "--set", "train.accelerator=cpu", "--set", "data.num_workers=1",
                 "--set", f"train.checkpoint_every={args.steps}", "--set", f"train.seed={args.seed}", *MODEL, log=log)
            entry["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        for protocol, key, extra in (("linear-probe", "linear_probe", ["--fractions", "1", "--cv", "10",
                                                                        "--no-supervised"]),
                                     ("zero-shot", "zero_shot", [])):
            out = run / "eval" / protocol
            if not (out / "results.json").is_file():
                _cli("eval", protocol, "--checkpoint", str(run), "--data", str(args.ptbxl), "--task", "superdiagnostic",
                     "--device", "cpu", "--threads", "1", "--out", str(out), *extra, log=log)
            result = json.loads((out / "results.json").read_text())
            block = result[key]["superdiagnostic"]
            entry[key] = _auroc(block["model"])
            if "random_init" in block:
                summary.setdefault("random_init", {})[key] = _auroc(block["random_init"])
        summary_path.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
