"""The packaged ECG knowledge corpus: one entry per condition, read from ``knowledge/*.yaml``.

ESI (Wang et al., section 3.1.1) built its knowledge database from two ECG textbooks; ecgalign ships its own
corpus instead, written by the project: for every condition a definition, diagnostic criteria, per-lead
waveform patterns and differentials, each entry naming the kind of source it follows (a guideline or a
textbook chapter). An entry lists the native codes that mean it in every code system the toolkit reads
(``scp``: PTB-XL SCP statements, ``snomed``: challenge SNOMED CT ids, ``cpsc2018`` and ``code`` class names,
``eee``: EEE structural categories), so a record's codes resolve to conditions without a table elsewhere.

Each YAML file holds ``conditions:``, a list of mappings::

    - id: crbbb                         # unique, lower case
      name: complete right bundle branch block
      aliases: [RBBB, complete RBBB]   # other names used in reports (matched as whole words)
      codes: {scp: [CRBBB], snomed: ["59118001"], cpsc2018: [RBBB]}
      source: {kind: guideline, ref: "AHA/ACCF/HRS ECG recommendations, part III"}
      definition: ...
      criteria: ...
      leads: ...                        # per-lead waveform patterns
      differentials: ...
      features: [inverted-t-waves]      # optional: finding-level conditions that are part of this pattern

``features`` makes explicit which other statements a passage may name as part of the condition's own pattern
(an inferior infarct's inverted T waves): a description may name them when the record carries the condition.
``load_corpus`` validates all of it (unknown keys, missing fields, duplicate ids, names or codes, an alias
shared by two conditions) and raises ``InputError`` naming the file and entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from ecgalign.data.errors import InputError

SECTIONS: tuple[str, ...] = ("definition", "criteria", "leads", "differentials")
# The sections that describe how a condition looks on the tracing (what the extractive composer quotes).
WAVEFORM_SECTIONS: tuple[str, ...] = ("criteria", "leads")
CODE_SYSTEMS: tuple[str, ...] = ("scp", "snomed", "cpsc2018", "code", "eee")
SOURCE_KINDS: tuple[str, ...] = ("guideline", "textbook chapter")
_KEYS = {"id", "name", "aliases", "codes", "source", "features", *SECTIONS}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Words that, shortly before a condition name, negate it in a report ("no evidence of infarction").
_NEGATION = re.compile(r"\b(?:no|not|without|ohne|kein|keine|keinen|ingen|excluded?|rule[sd]? out)\b[^.;,]{0,30}$")


@dataclass(frozen=True)
class Condition:
    """One knowledge entry (see the module docstring for the fields)."""

    id: str
    name: str
    aliases: tuple[str, ...]
    codes: Mapping[str, tuple[str, ...]]
    source_kind: str
    source_ref: str
    sections: Mapping[str, str]
    file: str = ""
    features: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"{self.source_kind}: {self.source_ref}"


@dataclass
class Corpus:
    """All conditions, with lookups from native codes and from names found in free text."""

    conditions: dict[str, Condition]
    _by_code: dict[tuple[str, str], str] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)  # lower-case name or alias -> id
    _abbrevs: dict[str, str] = field(default_factory=dict)  # all-caps alias (case-sensitive) -> id

    def __post_init__(self) -> None:
        for cond in self.conditions.values():
            for system, codes in cond.codes.items():
                for code in codes:
                    self._by_code[(system, code)] = cond.id
            for phrase in (cond.name, *cond.aliases):
                if _is_abbreviation(phrase):
                    self._abbrevs[phrase] = cond.id
                else:
                    self._names[phrase.lower()] = cond.id
        self._name_re = _alternation(self._names)
        self._abbrev_re = _alternation(self._abbrevs)

    def __len__(self) -> int:
        return len(self.conditions)

    def __getitem__(self, condition_id: str) -> Condition:
        return self.conditions[condition_id]

    def for_code(self, system: str, code: str) -> str | None:
        """The condition id a native code means, or None."""
        return self._by_code.get((system, str(code).strip()))

    def for_codes(self, system: str, codes: Iterable[str]) -> tuple[list[str], list[str]]:
        """(condition ids in first-seen order, codes that no condition lists)."""
        found: list[str] = []
        unknown: list[str] = []
        for code in codes:
            cid = self.for_code(system, code)
            if cid is None:
                unknown.append(str(code))
            elif cid not in found:
                found.append(cid)
        return found, unknown

    def mentioned(self, text: str, *, negation: bool = True) -> list[str]:
        """Conditions named in ``text``: names and aliases as whole words, longest first (names
        case-insensitively, all-caps abbreviations case-sensitively). With ``negation``, a name shortly after
        "no", "without", "kein", ... does not count."""
        found: list[str] = []
        lower = text.lower()
        masked = list(text)
        for m in self._name_re.finditer(lower):
            for i in range(m.start(), m.end()):
                masked[i] = " "
            if not (negation and _NEGATION.search(lower[max(0, m.start() - 40): m.start()])):
                found.append(self._names[m.group(1)])
        rest = "".join(masked)
        for m in self._abbrev_re.finditer(rest):
            if not (negation and _NEGATION.search(lower[max(0, m.start() - 40): m.start()])):
                found.append(self._abbrevs[m.group(1)])
        return list(dict.fromkeys(found))

    def allowed(self, conditions: Iterable[str]) -> set[str]:
        """What a description of a record with ``conditions`` may name: them and their declared features."""
        out = set(conditions)
        for cid in list(out):
            if cid in self.conditions:
                out.update(self.conditions[cid].features)
        return out

    def codes(self, system: str) -> set[str]:
        """Every native code of ``system`` that some condition lists."""
        return {code for (s, code) in self._by_code if s == system}


def _alternation(phrases: Mapping[str, str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    if not ordered:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in ordered) + r")(?![\w-])")


def _is_abbreviation(phrase: str) -> bool:
    """An alias without lower-case letters (RBBB, 1AVB) is matched case-sensitively."""
    return not any(ch.islower() for ch in phrase)


def _parse_entry(raw: object, file: str, index: int) -> Condition:
    where = f"{file}: entry {index}"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    where = f"{file}: entry {raw.get('id', index)!r}"
    unknown = set(raw) - _KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(_KEYS)}")
    for key in ("id", "name", *SECTIONS):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise InputError(f"{where}: field {key!r} must be non-empty text")
    if not _ID.match(raw["id"]):
        raise InputError(f"{where}: id must be lower case letters, digits, '-' or '_'")
    source = raw.get("source")
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS or not str(source.get("ref", "")).strip():
        raise InputError(f"{where}: source must be {{kind: one of {list(SOURCE_KINDS)}, ref: text}}")
    codes = raw.get("codes") or {}
    if not isinstance(codes, dict) or set(codes) - set(CODE_SYSTEMS):
        raise InputError(f"{where}: codes must map code systems {list(CODE_SYSTEMS)} to lists")
    features = raw.get("features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InputError(f"{where}: features must be a list of condition ids")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise InputError(f"{where}: aliases must be a list of non-empty strings")
    return Condition(
        id=raw["id"],
        name=" ".join(raw["name"].split()),
        aliases=tuple(" ".join(a.split()) for a in aliases),
        codes={s: tuple(str(c).strip() for c in v) for s, v in codes.items()},
        source_kind=source["kind"],
        source_ref=" ".join(str(source["ref"]).split()),
        sections={k: " ".join(raw[k].split()) for k in SECTIONS},
        file=file,
        features=tuple(features),
    )


def load_corpus(files: Iterable[str | Path] | None = None) -> Corpus:
    """Read and validate corpus files (default: the packaged ``knowledge/*.yaml``)."""
    if files is None:
        return packaged_corpus()
    texts = [(Path(f).name, Path(f).read_text(encoding="utf-8")) for f in files]
    return _build(texts)


@lru_cache(maxsize=1)
def packaged_corpus() -> Corpus:
    folder = resources.files("ecgalign.text.cqa").joinpath("knowledge")
    texts = sorted((f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".yaml"))
    return _build(texts)


def packaged_corpus_files() -> list[tuple[str, str]]:
    """(file name, text) of every packaged corpus file, sorted by name."""
    folder = resources.files("ecgalign.text.cqa").joinpath("knowledge")
    return sorted((f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".yaml"))


def _build(texts: Iterable[tuple[str, str]]) -> Corpus:
    conditions: dict[str, Condition] = {}
    owners: dict[tuple[str, str], str] = {}
    phrases: dict[str, str] = {}
    for name, text in texts:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{name}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("conditions"), list):
            raise InputError(f"{name}: expected a top-level 'conditions:' list")
        for i, raw in enumerate(data["conditions"]):
            cond = _parse_entry(raw, name, i)
            if cond.id in conditions:
                raise InputError(f"{name}: duplicate condition id {cond.id!r} (also in {conditions[cond.id].file})")
            for system, codes in cond.codes.items():
                for code in codes:
                    other = owners.setdefault((system, code), cond.id)
                    if other != cond.id:
                        raise InputError(f"{name}: {system} code {code!r} listed by both {other!r} and {cond.id!r}")
            for phrase in (cond.name, *cond.aliases):
                key = phrase if _is_abbreviation(phrase) else phrase.lower()
                other = phrases.setdefault(key, cond.id)
                if other != cond.id:
                    raise InputError(f"{name}: name or alias {phrase!r} used by both {other!r} and {cond.id!r}")
            conditions[cond.id] = cond
    if not conditions:
        raise InputError("knowledge corpus is empty: no conditions found")
    for cond in conditions.values():
        missing = [f for f in cond.features if f not in conditions or f == cond.id]
        if missing:
            raise InputError(f"{cond.file}: entry {cond.id!r}: features {missing} are not other condition ids")
    return Corpus(conditions)
