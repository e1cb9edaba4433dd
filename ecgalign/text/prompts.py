"""Zero-shot prompt sets: several clinical descriptions per class of every benchmark label set.

Zero-shot classification (CLIP, Radford et al. 2021; MERIT appendix, "Zero-shot Evaluation"; ESI section 4)
embeds each class by the mean of several prompts, so every class here has at least three phrasings: its
plain name, a description of the waveform findings, a report-style sentence and an abbreviation expansion.
The project wrote them against the datasets' own definitions (PTB-XL's SCP statement table, the CPSC2018 and
CODE class lists, the challenge's SNOMED CT table); they are lower case English.

The data live in ``ecgalign/text/prompt_sets/<dataset>.yaml``, one file per dataset:

.. code-block:: yaml

    sets:
      all:                      # a label set of the dataset's scheme
        prompts:                # class -> list of prompts
          NORM: [normal ecg, ...]
        templated:              # optional: classes whose prompts come from the scheme's class names
          templates: ["{name}", "an ecg with {name}"]
          classes: [AAR, ...]
      form: {from: all}         # the scheme's classes of this set, with the prompts of set ``all``

Loading checks every set against its scheme: a missing or unknown class, an empty or duplicated prompt, a
prompt shared by two classes or a leftover ``{placeholder}`` raises ``ValueError`` naming the file and set,
so ``prompt_set`` returns exactly the scheme's classes, in the scheme's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources

import yaml

from ecgalign.data.labels import LabelScheme

PROMPT_DATASETS: tuple[str, ...] = ("ptbxl", "cpsc2018", "code", "challenge")
DATASET_ALIASES: dict[str, str] = {"csn": "challenge"}

_PLACEHOLDER = re.compile(r"[{}]")


def _ptbxl_scheme() -> LabelScheme:
    from ecgalign.data.labels import scp_scheme

    return scp_scheme()


def _cpsc2018_scheme() -> LabelScheme:
    from ecgalign.data.readers.cpsc2018 import cpsc2018_scheme

    return cpsc2018_scheme()


def _code_scheme() -> LabelScheme:
    from ecgalign.data.readers.code15 import code_scheme

    return code_scheme()


def _challenge_scheme() -> LabelScheme:
    from ecgalign.data.labels.snomed import snomed_scheme

    return snomed_scheme()


_SCHEMES: dict[str, Callable[[], LabelScheme]] = {
    "ptbxl": _ptbxl_scheme,
    "cpsc2018": _cpsc2018_scheme,
    "code": _code_scheme,
    "challenge": _challenge_scheme,
}


def _ptbxl_names() -> dict[str, str]:
    from ecgalign.data.labels import SCPStatements

    statements = SCPStatements.bundled()
    return {code: statements.description(code) for code in statements.codes}


def _challenge_names() -> dict[str, str]:
    from ecgalign.data.labels.snomed import snomed_table

    return {c.abbreviation: c.name for c in snomed_table()}


# Readable class names that ``templated`` prompts are written from (datasets without a name table have none).
_NAMES: dict[str, Callable[[], dict[str, str]]] = {"ptbxl": _ptbxl_names, "challenge": _challenge_names}


def canonical_dataset(dataset: str) -> str:
    """The prompt dataset a name stands for (``"csn"`` -> ``"challenge"``); ``ValueError`` for unknowns."""
    name = DATASET_ALIASES.get(str(dataset).lower(), str(dataset).lower())
    if name not in PROMPT_DATASETS:
        aliases = ", ".join(f"{a!r} = {t!r}" for a, t in DATASET_ALIASES.items())
        raise ValueError(
            f"no zero-shot prompts for dataset {dataset!r}; "
            f"expected one of {list(PROMPT_DATASETS)} (alias {aliases})"
        )
    return name


def prompt_set(dataset: str, label_set: str | None = None) -> dict[str, list[str]]:
    """The prompts of every class of ``label_set`` of ``dataset``, keyed in the scheme's class order.

    ``dataset`` is one of ``ptbxl``, ``cpsc2018``, ``code``, ``challenge`` (alias ``csn``); ``label_set`` a
    set of that dataset's scheme (PTB-XL: superdiagnostic, subdiagnostic, form, rhythm, all, diagnostic;
    challenge: scored, snomed; cpsc2018 and code have one set each, named like the dataset, which is the
    default when ``label_set`` is omitted). The returned lists are copies.
    """
    name = canonical_dataset(dataset)
    sets = _load(name)
    if label_set is None:
        if len(sets) != 1:
            raise ValueError(f"dataset {name!r} has several prompt sets, name one of {list(sets)}")
        label_set = next(iter(sets))
    if label_set not in sets:
        raise ValueError(
            f"no zero-shot prompt set {label_set!r} for dataset {name!r}; available: {list(sets)}"
        )
    return {cls: list(prompts) for cls, prompts in sets[label_set].items()}


def available_prompt_sets() -> list[tuple[str, str]]:
    """Every ``(dataset, label_set)`` that ``prompt_set`` serves, datasets and sets in scheme order."""
    return [(name, label_set) for name in PROMPT_DATASETS for label_set in _load(name)]


def parse_prompt_sets(
    document: Mapping, dataset: str, source: str = "prompts"
) -> dict[str, dict[str, list[str]]]:
    """Validate a prompt document (the parsed YAML of the format above) against ``dataset``'s scheme.

    Returns ``{label_set: {class: prompts}}`` with label sets and classes in the scheme's order. ``source``
    names the document in error messages.
    """
    name = canonical_dataset(dataset)
    scheme = _SCHEMES[name]()
    if not isinstance(document, Mapping) or not isinstance(document.get("sets"), Mapping):
        raise ValueError(f"{source}: expected a mapping with a 'sets' mapping of label sets")
    specs: Mapping = document["sets"]
    unknown = [s for s in specs if s not in scheme.set_names()]
    if unknown:
        raise ValueError(
            f"{source}: label sets {unknown} are not sets of {name!r}; expected some of {scheme.set_names()}"
        )

    direct: dict[str, dict[str, list[str]]] = {}
    for label_set, spec in specs.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"{source}: set {label_set!r} must be a mapping with 'prompts' or 'from'")
        if "from" in spec:
            if len(spec) > 1:
                others = sorted(set(spec) - {"from"})
                raise ValueError(f"{source}: set {label_set!r} has 'from' and other keys {others}")
            continue
        where = f"{source}: set {label_set!r}"
        written = spec.get("prompts") or {}
        prompts = {str(cls): _clean(texts, f"{where}, class {cls!r}") for cls, texts in written.items()}
        templated = spec.get("templated")
        if templated:
            for cls, texts in _templated(templated, name, where).items():
                if cls in prompts:
                    raise ValueError(f"{where}: class {cls!r} is both written out and templated")
                prompts[cls] = texts
        direct[label_set] = _check_classes(prompts, scheme.classes(label_set), where, exact=True)

    out: dict[str, dict[str, list[str]]] = {}
    for label_set in scheme.set_names():
        if label_set not in specs:
            continue
        spec = specs[label_set]
        if "from" in spec:
            base = spec["from"]
            if base not in direct:
                raise ValueError(f"{source}: set {label_set!r} takes its prompts from {base!r}, which writes none out")
            where = f"{source}: set {label_set!r}"
            out[label_set] = _check_classes(direct[base], scheme.classes(label_set), where, exact=False)
        else:
            out[label_set] = direct[label_set]
    return out


def _clean(texts, where: str) -> list[str]:
    """Whitespace-normalised prompts of one class; ``ValueError`` for a non-list, an empty or repeated
    prompt, or a brace."""
    if isinstance(texts, str) or not isinstance(texts, list) or not texts:
        raise ValueError(f"{where}: expected a non-empty list of prompts, got {texts!r}")
    out: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: prompt {text!r} is not a non-empty string")
        text = " ".join(text.split())
        if _PLACEHOLDER.search(text):
            raise ValueError(f"{where}: prompt {text!r} has a leftover template brace")
        if text in out:
            raise ValueError(f"{where}: prompt {text!r} is listed twice")
        out.append(text)
    return out


def _templated(spec, dataset: str, where: str) -> dict[str, list[str]]:
    """Prompts written from the scheme's readable class names by ``{name}`` templates."""
    if not isinstance(spec, Mapping) or not spec.get("templates") or not spec.get("classes"):
        raise ValueError(f"{where}: 'templated' needs non-empty 'templates' and 'classes' lists")
    if dataset not in _NAMES:
        raise ValueError(f"{where}: dataset {dataset!r} has no class-name table to template prompts from")
    names = _NAMES[dataset]()
    out: dict[str, list[str]] = {}
    for cls in spec["classes"]:
        cls = str(cls)
        if cls not in names:
            raise ValueError(f"{where}: templated class {cls!r} has no name in the {dataset} table")
        try:
            texts = [str(t).format(name=names[cls].lower()) for t in spec["templates"]]
        except (KeyError, IndexError) as exc:
            raise ValueError(f"{where}: templates may only use the {{name}} placeholder ({exc})") from None
        if cls in out:
            raise ValueError(f"{where}: templated class {cls!r} is listed twice")
        out[cls] = _clean(texts, f"{where}, templated class {cls!r}")
    return out


def _check_classes(
    prompts: dict[str, list[str]], classes: list[str], where: str, exact: bool
) -> dict[str, list[str]]:
    """``prompts`` restricted to and ordered as ``classes``; raises for missing classes, for unknown ones when
    ``exact``, and for a prompt that two classes share."""
    missing = [c for c in classes if c not in prompts]
    if missing:
        raise ValueError(f"{where}: no prompts for classes {missing}")
    extra = [c for c in prompts if c not in classes]
    if exact and extra:
        raise ValueError(f"{where}: classes {extra} are not classes of the set (expected {classes})")
    owner: dict[str, str] = {}
    for cls in classes:
        for text in prompts[cls]:
            if text in owner:
                raise ValueError(f"{where}: prompt {text!r} is used by both {owner[text]!r} and {cls!r}")
            owner[text] = cls
    return {cls: prompts[cls] for cls in classes}


@lru_cache(maxsize=None)
def _load(dataset: str) -> dict[str, dict[str, list[str]]]:
    filename = f"{dataset}.yaml"
    text = resources.files("ecgalign.text.prompt_sets").joinpath(filename).read_text(encoding="utf-8")
    return parse_prompt_sets(yaml.safe_load(text), dataset, source=filename)


__all__ = [
    "DATASET_ALIASES",
    "PROMPT_DATASETS",
    "available_prompt_sets",
    "canonical_dataset",
    "parse_prompt_sets",
    "prompt_set",
]
