"""From a record's labels and demographics to an enriched description (ESI section 3.1.2, appendix A).

For every condition of a record the knowledge index is asked the paper's question, "How is {condition}
reflected in a 12-lead ECG?" (or one of its rephrasings, appendix A.3), and the top-k passages (paper: 2,
appendix A.1) of that condition are retrieved. Then either

- ``compose_extractive`` writes the description offline: a demographic sentence, the list of findings and,
  per condition, sentences taken from the retrieved waveform passages (criteria, per-lead patterns),
  deduplicated across conditions, chosen and phrased with a generator seeded by (seed, record id); or
- ``build_prompt`` assembles the RAG prompt for an LLM backend.

Both keep to the record: a sentence that names a condition the record does not carry (other than a declared
feature of one it carries, ``Corpus.allowed``) is dropped (``supported_sentences``), so a description never
adds a finding its labels (or, for records without codes, its report) do not support.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecgalign.text.cqa.chunking import split_sentences
from ecgalign.text.cqa.index import Hit
from ecgalign.text.cqa.knowledge import Corpus

# ESI section 3.1.2 (index 0) and appendix A.3's quoted rephrasings (1, 2); 3-5 are the project's own.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "How is {condition} reflected in a 12-lead ECG?",
    "Describe how {condition} appears in a 12-lead ECG.",
    "What are the ECG findings associated with {condition} in a 12-lead setup?",
    "Which waveform features of a 12-lead ECG indicate {condition}?",
    "What does {condition} look like on a standard 12-lead ECG?",
    "Explain the 12-lead ECG patterns that characterise {condition}.",
)
_DEMOGRAPHICS = (
    "12-lead ECG of {who}.",
    "This 12-lead ECG was recorded from {who}.",
    "Resting 12-lead ECG, {who}.",
)
_FINDINGS = (
    "Findings: {names}.",
    "The recording shows {names}.",
    "Diagnostic statements: {names}.",
)
_INTROS = (
    "{Name}: {text}",
    "Consistent with {name}, {text_lc}",
    "As expected in {name}, {text_lc}",
)


@dataclass(frozen=True)
class RecordQuery:
    """What CQA knows about one record: condition ids (from codes, or from the report when there are no
    codes), display names, demographics, and the native codes no corpus entry lists."""

    record_id: str
    conditions: tuple[str, ...]
    names: tuple[str, ...]
    age: int | None
    sex: str | None
    unknown_codes: tuple[str, ...] = ()
    from_report: bool = False

    @property
    def combo(self) -> str:
        """The (conditions, demographics) key that decides the prompt of an LLM backend."""
        return f"{','.join(sorted(self.conditions))}|{self.age}|{self.sex}"


def who(age: int | None, sex: str | None) -> str:
    """'a 63-year-old male patient', 'a female patient', 'a patient of unknown age and sex', ..."""
    sex_word = {"male": "male", "m": "male", "0": "male", "female": "female", "f": "female", "1": "female"}.get(
        str(sex).strip().lower() if sex is not None else "", "")
    article = "an" if age is not None and (age in (8, 11, 18) or 80 <= age <= 89) else "a"
    if age is not None and sex_word:
        return f"{article} {age}-year-old {sex_word} patient"
    if age is not None:
        return f"{article} {age}-year-old patient"
    if sex_word:
        return f"a {sex_word} patient of unknown age"
    return "a patient of unknown age and sex"


def record_seed(seed: int, record_id: str) -> np.random.Generator:
    """A generator that depends only on (seed, record id): descriptions are reproducible per record."""
    digest = hashlib.sha256(f"{seed}\x1f{record_id}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def template_for(query: RecordQuery, template: int | None, seed: int) -> str:
    """The question template: ``template`` by index, or (None) one chosen by the record's condition combo."""
    if template is None:
        digest = hashlib.sha256(f"{seed}\x1f{query.combo}".encode("utf-8")).digest()
        return PROMPT_TEMPLATES[digest[0] % len(PROMPT_TEMPLATES)]
    if not 0 <= template < len(PROMPT_TEMPLATES):
        raise ValueError(f"--template {template}: expected 0..{len(PROMPT_TEMPLATES) - 1} or 'vary'")
    return PROMPT_TEMPLATES[template]


def supported_sentences(text: str, conditions: Sequence[str], corpus: Corpus) -> tuple[list[str], int]:
    """Sentences of ``text`` naming nothing outside ``conditions`` and their features, and how many were dropped."""
    allowed_set = corpus.allowed(conditions)
    keep = [s for s in split_sentences(text) if set(corpus.mentioned(s, negation=False)) <= allowed_set]
    return keep, len(split_sentences(text)) - len(keep)


def compose_extractive(query: RecordQuery, hits: Mapping[str, Sequence[Hit]], corpus: Corpus, *,
                       seed: int = 0, max_sentences: int = 2) -> tuple[str, int]:
    """(description, sentences dropped as unsupported) composed from demographics and retrieved passages."""
    rng = record_seed(seed, query.record_id)
    parts = [_DEMOGRAPHICS[rng.integers(len(_DEMOGRAPHICS))].format(who=who(query.age, query.sex))]
    parts[0] = parts[0][0].upper() + parts[0][1:]
    if not query.conditions:
        parts.append("No diagnostic statement is available for this recording.")
        return " ".join(parts), 0
    parts.append(_FINDINGS[rng.integers(len(_FINDINGS))].format(names=", ".join(query.names)))
    seen: set[str] = set()
    allowed = corpus.allowed(query.conditions)
    dropped = 0
    for cid, name in zip(query.conditions, query.names):
        candidates: list[str] = []
        for hit in hits.get(cid, ()):
            for sentence in split_sentences(hit.text):
                key = " ".join(sentence.lower().split())
                if key in seen:
                    continue
                if not set(corpus.mentioned(sentence, negation=False)) <= allowed:
                    dropped += 1
                    continue
                seen.add(key)
                candidates.append(sentence)
        if not candidates:
            continue
        n = min(max_sentences, len(candidates))
        chosen = sorted(rng.choice(len(candidates), size=n, replace=False).tolist())
        text = " ".join(candidates[i] for i in chosen)
        intro = _INTROS[rng.integers(len(_INTROS))]
        parts.append(intro.format(Name=name[0].upper() + name[1:], name=name, text=text, text_lc=_lower_first(text)))
    return " ".join(parts), dropped


def _lower_first(text: str) -> str:
    """Lower-case an ordinary capitalised first word ("Leads", "A"), not a symbol ("QRS", "P", "V1")."""
    word = text.split(" ", 1)[0]
    if word in ("A", "An") or (len(word) > 1 and word[0].isupper() and word[1:].islower()):
        return text[0].lower() + text[1:]
    return text


def build_prompt(query: RecordQuery, hits: Mapping[str, Sequence[Hit]], template: str) -> str:
    """The RAG prompt for an LLM backend: patient, findings, retrieved context, the per-condition questions."""
    lines = [
        "You are an expert cardiologist. Using the context, describe the waveform patterns expected in the "
        "12-lead ECG of this patient. Mention only the listed findings; do not add other diagnoses.",
        "",
        f"Patient: {who(query.age, query.sex)}.",
        f"Findings: {', '.join(query.names) if query.names else 'none recorded'}.",
        "",
        "Context:",
    ]
    k = 0
    for cid in query.conditions:
        for hit in hits.get(cid, ()):
            k += 1
            lines.append(f"[{k}] {hit.title}: {hit.text}")
    if k == 0:
        lines.append("(no passage retrieved)")
    lines += ["", "Questions:", *(template.format(condition=name) for name in query.names), "", "Description:"]
    return "\n".join(lines)
