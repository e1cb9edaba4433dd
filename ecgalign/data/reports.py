"""Report text: normalisation, boilerplate removal and an English rendering of German and Swedish statements.

PTB-XL reports (Wagner et al. 2020) are machine statements of the recording devices, mostly German
("sinusrhythmus periphere niederspannung"), some Swedish ("sinusrytm vänster el-axel") and some English; they
carry encoding damage (upper-case umlauts inside lower-case words, ``#`` for ``ü``, ``á`` for ``ß``, stray
bytes) and cardiologists' edit notes that spell out SCP codes ("Edit: NORM 100, (NDT)"), which would leak the
labels into the text a model is trained on. ``normalize_report`` repairs and strips all of that;
``translate_report`` then renders the statements in English with the project's phrase table
(``report_phrases.csv``: language, phrase, English; the longest phrase wins, whole words only).
Words the table does not know (drug names, doses) pass through unchanged.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib import resources

LANGUAGES = ("de", "sv")

# Damaged characters of the PTB-XL CSV -> what they stand for.
_REPAIRS = (
    (re.compile(r"(?<=\w)#|#(?=\w)"), "ü"),  # "f#r", "#bergang"
    (re.compile(r"(?<=\w)á(?=\w)"), "ß"),  # "schweiáausbruch" (code page 437 read as Latin-1)
    (re.compile(r"[ó¿¬½©]+"), " "),  # stray bytes of a broken device export (no such letter in these languages)
)
# Boilerplate: edit notes (they name the SCP codes), "unconfirmed report" stamps, requests without a reading,
# and a device software version ("4.46") at either end of the text.
_BOILERPLATE = (
    re.compile(r"\bedit:.*$", re.DOTALL),
    re.compile(r"\b(?:unbestätigter|unbestaetigter|unbestatigter) bericht\b\.?"),
    re.compile(r"\bunconfirmed report\b\.?|\bunconfirmed\b\.?"),
    re.compile(r"\btrace only requested\b\.?"),
    re.compile(r"^\s*\d\.\d\d(?=\s|$)|(?<=\s)\d\.\d\d\s*$|^\d\.\d\d$"),
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)])")
_REPEATED_PUNCT = re.compile(r"([.,;])(?:\s*\1)+")


def normalize_report(text: str | None) -> str:
    """Lower-case, repaired, boilerplate-free report with single spaces; ``""`` for an empty report."""
    if not text:
        return ""
    out = str(text)
    for pattern, repl in _REPAIRS:
        out = pattern.sub(repl, out)
    out = out.lower()
    for pattern in _BOILERPLATE:
        out = pattern.sub(" ", out)
    out = " ".join(out.split())
    out = _SPACE_BEFORE_PUNCT.sub(r"\1", out)
    out = _REPEATED_PUNCT.sub(r"\1", out)
    return out.strip(" ,;")


@lru_cache(maxsize=1)
def phrase_table() -> dict[str, dict[str, str]]:
    """``{language: {phrase: english}}`` from the packaged ``report_phrases.csv``."""
    table: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    with resources.files("ecgalign.data").joinpath("report_phrases.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lang, phrase = row["language"], normalize_report(row["phrase"])
            if lang not in table:
                raise ValueError(f"report_phrases.csv: unknown language {lang!r} (expected one of {LANGUAGES})")
            if phrase in table[lang]:
                raise ValueError(f"report_phrases.csv: phrase {phrase!r} appears twice for {lang!r}")
            table[lang][phrase] = row["english"].strip()
    return table


def _phrase_pattern(phrases: list[str]) -> re.Pattern[str]:
    parts = []
    for phrase in sorted(phrases, key=len, reverse=True):  # the longest phrase wins
        body = r"\s+".join(re.escape(word) for word in phrase.split())
        head = r"(?<!\w)" if phrase[0].isalnum() else ""
        tail = r"(?!\w)" if phrase[-1].isalnum() else ""
        parts.append(head + body + tail)
    return re.compile("|".join(parts))


@lru_cache(maxsize=None)
def _patterns() -> dict[str, re.Pattern[str]]:
    return {lang: _phrase_pattern(list(phrases)) for lang, phrases in phrase_table().items()}


@lru_cache(maxsize=None)
def _markers() -> dict[str, frozenset[str]]:
    """Phrases that identify a language: in its table, in no other, and not English already."""
    table = phrase_table()
    markers = {}
    for lang, phrases in table.items():
        others = set().union(*(set(p) for other, p in table.items() if other != lang))
        markers[lang] = frozenset(p for p, english in phrases.items() if p not in others and p != english.lower())
    return markers


def report_language(text: str) -> str:
    """``"de"``, ``"sv"`` or ``"en"``: the language whose own phrases occur most in the normalised ``text``."""
    normalized = normalize_report(text)
    markers = _markers()
    scores = {
        lang: sum(1 for m in _patterns()[lang].finditer(normalized) if m.group(0) in markers[lang])
        for lang in LANGUAGES
    }
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] > 0 else "en"


def translate_report(text: str | None) -> str:
    """English rendering of a report (normalised first); English reports come back normalised only."""
    normalized = normalize_report(text)
    if not normalized:
        return ""
    lang = report_language(normalized)
    if lang == "en":
        return normalized
    table = phrase_table()[lang]
    english = _patterns()[lang].sub(lambda m: table[" ".join(m.group(0).split())], normalized)
    return " ".join(english.split())
