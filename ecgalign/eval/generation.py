"""ECG-conditioned report generation (MERIT section 4.2.4, appendix A.2; MedTVT-R1 stage 1): the ECG encoder
stays frozen; a projection adapter turns its pooled features into prefix tokens of a language decoder, and adapter
+ decoder (or its LoRA weights) train with next-token loss on the report text. The epoch is chosen on the
validation part's loss (PTB-XL fold 9), never on test; ``cv`` pools out-of-fold generations instead.

Every table has three rows trained the same way: the pretrained encoder, its random-init twin, and "no ECG"
(all-zero features, so the prefix is a learned constant: what the decoder says from the text prior alone).

Targets are the dataset's English reports, or, with ``qa``, the answers of an ECG-QA-style JSON file (Oh et al.
2023: a list of ``{"question", "answer", "ecg_id"}``), the question given to the decoder as its prompt.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import Split, cv_fold_split
from ecgalign.eval.protocols import Context, register_protocol
from ecgalign.eval.report import ROLE, fmt, table
from ecgalign.eval.text_metrics import text_metrics
from ecgalign.models.decoders.prefix_lm import PrefixTransformerLM, WordTokenizer, load_hf_decoder

ROLES = {**ROLE, "no_ecg": "no ECG (text prior only)"}


@dataclass
class GenerationConfig:
    """Decoder and training settings (defaults sized for CPU: a 2-block, 128-wide decoder)."""

    decoder: str = "transformer"  # or a local Hugging Face causal-LM folder (LoRA)
    n_prefix: int = 4
    dim: int = 128
    depth: int = 2
    heads: int = 4
    max_tokens: int = 64
    epochs: int = 40
    patience: int = 8
    batch_size: int = 32
    lr: float = 1e-3  # a Hugging Face decoder: LoRA + adapter, same optimiser (AdamW, cosine decay)
    weight_decay: float = 0.01
    seed: int = 0
    bertscore: bool = True
    bertscore_model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    qa: str | None = None  # an ECG-QA-style JSON file: answers are the targets, questions the prompts
    examples: int = 5  # generated texts kept in the results per row


@dataclass
class QAPair:
    ecg_id: str
    question: str
    answer: str


def read_ecgqa(path: str | Path) -> tuple[list[QAPair], list[dict[str, str]]]:
    """(pairs, skipped) of an ECG-QA-style JSON list: ``question`` (str), ``answer`` (str or list of str),
    ``ecg_id`` (one id, or a list of one; comparison questions over several ECGs are skipped and counted)."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ECG-QA JSON ({exc})") from None
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of question/answer objects, got {type(items).__name__}")
    pairs, skipped = [], []
    for i, item in enumerate(items):
        why = None
        if not isinstance(item, dict) or not {"question", "answer", "ecg_id"} <= set(item):
            why = "expected an object with question, answer and ecg_id"
        else:
            ids = item["ecg_id"] if isinstance(item["ecg_id"], list) else [item["ecg_id"]]
            answer = item["answer"]
            answer = ", ".join(map(str, answer)) if isinstance(answer, list) else answer
            if len(ids) != 1:
                why = f"{len(ids)} ECGs (only single-ECG questions are generated)"
            elif not isinstance(item["question"], str) or not isinstance(answer, str) or not answer.strip():
                why = "question and answer must be non-empty text"
        if why:
            skipped.append({"item": str(i), "why": why})
            continue
        pairs.append(QAPair(str(ids[0]), item["question"].strip(), answer.strip()))
    if not pairs:
        raise InputError(f"{path}: no usable question/answer pair ({len(skipped)} skipped: "
                         f"{skipped[0]['why'] if skipped else 'empty list'})")
    return pairs, skipped


@dataclass
class Samples:
    """What the decoder trains on: one row per (record, prompt, target); ``record`` indexes the dataset."""

    record: np.ndarray
    prompts: list[str]
    targets: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def take(self, records: np.ndarray) -> np.ndarray:
        """Sample rows whose record is in ``records``."""
        return np.flatnonzero(np.isin(self.record, records))


def report_samples(reports: Sequence[str]) -> Samples:
    keep = [i for i, r in enumerate(reports) if r.strip()]
    skipped = [{"record": str(i), "why": "empty report"} for i, r in enumerate(reports) if not r.strip()]
    return Samples(np.array(keep, dtype=int), [""] * len(keep), [reports[i] for i in keep], skipped)


def qa_samples(pairs: Sequence[QAPair], record_ids: Sequence[str]) -> Samples:
    index = {str(r): i for i, r in enumerate(record_ids)}
    rows = [(index[p.ecg_id], p) for p in pairs if p.ecg_id in index]
    skipped = [{"ecg_id": p.ecg_id, "why": "no such record in the dataset"} for p in pairs if p.ecg_id not in index]
    if not rows:
        raise InputError(f"none of the {len(pairs)} question/answer pairs names a record of the dataset")
    return Samples(np.array([r for r, _ in rows]), [p.question for _, p in rows], [p.answer for _, p in rows],
                   skipped)


def _sequences(tok, prompts: Sequence[str], targets: Sequence[str], max_tokens: int):
    """(ids (B, S) right-padded, loss mask (B, S) on target tokens + eos)."""
    seqs, masks = [], []
    for prompt, target in zip(prompts, targets):
        head = tok.encode(prompt, eos=False) if prompt else [tok.bos_id]
        tail = tok.encode(target, bos=False)[: max(1, max_tokens - len(head))]
        if tail[-1] != tok.eos_id:
            tail[-1] = tok.eos_id
        seqs.append(head + tail)
        masks.append([0] * len(head) + [1] * len(tail))
    n = max(map(len, seqs))
    ids = torch.full((len(seqs), n), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
    return ids, mask


def build_decoder(config: GenerationConfig, feature_dim: int, train_texts: Sequence[str]):
    """(decoder, tokenizer): the from-scratch Transformer over the training texts' words, or a local Hugging
    Face causal LM with LoRA."""
    if config.decoder == "transformer":
        tok = WordTokenizer.build(train_texts)
        model = PrefixTransformerLM(feature_dim, tok.vocab_size, config.dim, config.depth, config.heads,
                                    config.n_prefix, config.max_tokens, pad_id=tok.pad_id, eos_id=tok.eos_id)
        return model, tok
    return load_hf_decoder(config.decoder, feature_dim, n_prefix=config.n_prefix, max_length=config.max_tokens)


def _loss(model, feats: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, batch: int) -> float:
    model.eval()
    with torch.no_grad():
        losses = [float(model(feats[i: i + batch], ids[i: i + batch], mask[i: i + batch])) * len(ids[i: i + batch])
                  for i in range(0, len(ids), batch)]
    return sum(losses) / max(1, len(ids))


def train_decoder(features: np.ndarray, samples: Samples, train: np.ndarray, val: np.ndarray,
                  config: GenerationConfig):
    """Adapter + decoder trained on sample rows ``train`` (features frozen, (N, D) per record); the epoch with
    the lowest validation loss is kept. Returns (decoder, tokenizer, info)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model, tok = build_decoder(config, features.shape[1], [samples.prompts[i] + " " + samples.targets[i]
                                                           for i in train])
    feats = torch.as_tensor(features[samples.record], dtype=torch.float32)  # (rows, D)
    ids, mask = _sequences(tok, samples.prompts, samples.targets, config.max_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(train) / config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps), eta_min=config.lr * 0.01)
    best, best_epoch, best_state, history = float("inf"), 0, None, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.as_tensor(train)[torch.randperm(len(train), generator=gen)]
        for start in range(0, len(order), config.batch_size):
            rows = order[start: start + config.batch_size]
            loss = model(feats[rows], ids[rows], mask[rows])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
        val_loss = _loss(model, feats[val], ids[val], mask[val], config.batch_size)
        history.append(round(val_loss, 4))
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    info = {"best_epoch": best_epoch, "epochs_run": len(history), "val_loss": best, "vocab": tok.vocab_size,
            "trainable_params": sum(p.numel() for p in params)}
    return model, tok, info


def generate(model, tok, features: np.ndarray, samples: Samples, rows: np.ndarray, max_tokens: int) -> list[str]:
    """Greedy texts for sample ``rows`` (their prompts after their ECG prefix)."""
    feats = torch.as_tensor(features[samples.record[rows]], dtype=torch.float32)
    prompts = [tok.encode(samples.prompts[i], eos=False) if samples.prompts[i] else [tok.bos_id] for i in rows]
    return [tok.decode(ids) for ids in model.generate(feats, prompts, max_tokens)]


def _sample_split(samples: Samples, split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return samples.take(split.train), samples.take(split.val), samples.take(split.test)


def generation_row(features: np.ndarray, samples: Samples, parts: Sequence[Split], codes: Sequence[Sequence[str]],
                   code_system: str, config: GenerationConfig) -> dict[str, Any]:
    """Train on each split of ``parts`` (one: the official split; k: cross-validation), generate for its test
    rows, and score the pooled generations."""
    texts: dict[int, str] = {}
    runs = []
    for part in parts:
        train, val, test = _sample_split(samples, part)
        if len(train) == 0 or len(val) == 0 or len(test) == 0:
            raise NotApplicableError(f"a split without training, validation or test texts (sizes {len(train)}, "
                                     f"{len(val)}, {len(test)})")
        model, tok, info = train_decoder(features, samples, train, val, config)
        texts.update(zip(test.tolist(), generate(model, tok, features, samples, test, config.max_tokens)))
        runs.append(info)
    rows = np.array(sorted(texts))
    hyps = [texts[i] for i in rows]
    refs = [samples.targets[i] for i in rows]
    labels = [codes[samples.record[i]] for i in rows] if not config.qa else None
    out = text_metrics(hyps, refs, labels, code_system, bertscore=config.bertscore,
                       bertscore_model=config.bertscore_model)
    out["training"] = runs[0] if len(runs) == 1 else runs
    out["examples"] = [{"reference": r, "generated": h} for h, r in zip(hyps[: config.examples], refs)]
    return out


def run_generation(features: dict[str, np.ndarray], samples: Samples, parts: Sequence[Split],
                   codes: Sequence[Sequence[str]], code_system: str, config: GenerationConfig) -> dict[str, Any]:
    """One row per encoder role in ``features`` plus the "no ECG" row (zeros shaped like the first role's)."""
    first = next(iter(features.values()))
    roles = {**features, "no_ecg": np.zeros_like(first)}
    out: dict[str, Any] = {role: generation_row(f, samples, parts, codes, code_system, config)
                           for role, f in roles.items()}
    if not config.qa:  # how well the matcher reads the reference reports themselves: the label-F1 ceiling
        from_refs = sorted({i for part in parts for i in samples.take(part.test).tolist()})
        out["reference_reports"] = text_metrics([samples.targets[i] for i in from_refs],
                                                [samples.targets[i] for i in from_refs],
                                                [codes[samples.record[i]] for i in from_refs], code_system,
                                                bertscore=False)
    return out


def _section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    rows, examples = [], []
    for role, m in block.get("rows", {}).items():
        if role == "reference_reports":
            rows.append({"decoder input": "reference reports (matcher ceiling)", "label F1": m.get("label_f1"),
                         "label macro F1": m.get("label_macro_f1")})
            continue
        rows.append({"decoder input": ROLES.get(role, role), "records": m["records"], "BLEU": m["bleu"],
                     "ROUGE-L": m["rouge_l"], "ROUGE-L 95% CI": m.get("rouge_l_ci95"), "METEOR": m.get("meteor"),
                     "METEOR (no synonyms)": m.get("meteor_no_synonyms"), "BERTScore F1": m.get("bertscore_f1"),
                     "label F1": m.get("label_f1"), "label F1 95% CI": m.get("label_f1_ci95"),
                     "label macro F1": m.get("label_macro_f1")})
        for ex in m.get("examples", [])[:3]:
            examples.append({"decoder input": ROLES.get(role, role), "reference": ex["reference"],
                             "generated": ex["generated"]})
    notes = [f"split: {html.escape(str(block.get('split')))}; decoder {html.escape(str(block.get('decoder')))}; "
             f"targets: {html.escape(str(block.get('targets')))}. BLEU is corpus BLEU-4 (0-100, sacrebleu); ROUGE-L, "
             "METEOR, BERTScore F1 in 0-1; label F1: conditions the report matcher finds in the generated text vs "
             "the record's true labels."]
    if block.get("meteor_missing"):
        notes.append(f"METEOR: {html.escape(block['meteor_missing'])}.")
    if block.get("bertscore_model"):
        notes.append(f"BERTScore model: {html.escape(block['bertscore_model'])}.")
    return (f'<p class="note">{" ".join(notes)}</p>' + table(rows) + "<h3>Examples</h3>" + table(examples)
            + f'<p class="note">skipped: {fmt(block.get("skipped"))}</p>')


@register_protocol("generate", key="generation", title="ECG-conditioned report generation", section=_section,
                   summary="Report generation from the frozen encoder (prefix adapter + decoder): BLEU, ROUGE-L, "
                           "METEOR, BERTScore, label F1, with random-init and no-ECG rows.",
                   options=("cv", "decoder", "qa"), in_all=False)
def generation_protocol(ctx: Context, config: GenerationConfig | None = None) -> dict[str, Any]:
    if config is None:
        settings = dict(getattr(ctx.config, "generation", {}))
        unknown = sorted(set(settings) - {f.name for f in fields(GenerationConfig)})
        if unknown:
            raise InputError(f"generation settings {unknown} unknown; expected some of "
                             f"{[f.name for f in fields(GenerationConfig)]}")
        config = GenerationConfig(**settings)
    data = ctx.data
    if config.qa:
        pairs, bad = read_ecgqa(config.qa)
        samples = qa_samples(pairs, data.meta["record_id"].astype(str).tolist())
        samples.skipped = bad + samples.skipped
    else:
        samples = report_samples(data.reports)
    if len(samples.targets) == 0:
        raise NotApplicableError(f"{data.path}: no record has a report to generate")
    folds = data.folds
    if ctx.config.cv:
        if folds is None:
            raise NotApplicableError(f"{data.path}: --cv needs the dataset's folds")
        parts = [cv_fold_split(folds, k, ctx.config.cv) for k in range(1, ctx.config.cv + 1)]
        rule = f"{ctx.config.cv}-fold cross-validation (test fold k, validation fold k-1), pooled"
    else:
        parts, rule = [ctx.split], ctx.split_rule
    codes = [list(c) if c is not None else [] for c in data.meta.get("codes", [[]] * len(data.meta))]
    rows = run_generation({role: d.features for role, d in ctx.embedded.items()}, samples, parts, codes,
                          data.code_system, config)
    model_row = rows["model"]
    return {"split": rule, "decoder": config.decoder, "targets": "ECG-QA answers" if config.qa else "reports",
            "settings": asdict(config), "samples": len(samples.targets), "skipped": len(samples.skipped),
            "skipped_examples": samples.skipped[:20], "meteor_missing": model_row.get("meteor_missing"),
            "bertscore_model": model_row.get("bertscore_model"), "rows": rows}
