"""Chunking: the packaged corpus and user documents (Markdown, plain text, PDF) into retrievable passages.

ESI (section 3.1.1) split two textbooks into passages for its vector database; here every corpus entry gives
one passage per section (definition, criteria, leads, differentials), and user documents are split on
Markdown headings, then on blank-line paragraphs packed up to ``max_chars`` (a paragraph longer than that is
split between sentences). A chunk's id is the hash of its content and metadata, so an index rebuild embeds
only chunks that changed. PDF text comes from pypdf (extra ``cqa``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecgalign.data.errors import InputError
from ecgalign.text.cqa.knowledge import SECTIONS, Corpus

DOCUMENT_SUFFIXES: tuple[str, ...] = (".md", ".markdown", ".txt", ".text", ".pdf")
SECTION_TITLES: dict[str, str] = {
    "definition": "definition",
    "criteria": "diagnostic criteria",
    "leads": "waveform patterns by lead",
    "differentials": "differential diagnosis",
}
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage. ``condition`` is a corpus condition id or "" (not tied to one condition)."""

    text: str
    title: str
    condition: str
    source: str
    section: str
    doc: str

    @property
    def id(self) -> str:
        key = "\x1f".join((self.doc, self.section, self.condition, self.source, self.title, self.text))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    @property
    def embed_text(self) -> str:
        """What the embedding model sees: the title gives a passage its topic."""
        return f"{self.title}. {self.text}"


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage (split after . ! ? before an upper-case letter, digit or bracket)."""
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def corpus_chunks(corpus: Corpus) -> list[Chunk]:
    """One chunk per (condition, section) of the packaged or given corpus."""
    out = []
    for cond in corpus.conditions.values():
        for section in SECTIONS:
            out.append(Chunk(
                text=cond.sections[section],
                title=f"{cond.name}: {SECTION_TITLES[section]}",
                condition=cond.id,
                source=cond.source,
                section=section,
                doc=f"ecgalign:{cond.file}",
            ))
    return out


def document_chunks(path: str | Path, corpus: Corpus | None = None, *, max_chars: int = 1000) -> list[Chunk]:
    """Chunks of one user document. A chunk whose heading path names exactly one corpus condition is tagged
    with it (so condition filters find user passages too); its ``source`` is ``"document: <file name>"``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        raise InputError(f"{path}: unsupported document type {suffix or '(none)'}; expected one of {list(DOCUMENT_SUFFIXES)}")
    if suffix == ".pdf":
        blocks = [(f"page {i}", text) for i, text in _pdf_pages(path)]
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text: {exc}") from exc
        blocks = list(_markdown_sections(text)) if suffix in (".md", ".markdown") else [("", text)]
    out = []
    for heading, body in blocks:
        condition = ""
        if corpus is not None and heading:
            named = corpus.mentioned(heading, negation=False)
            condition = named[0] if len(named) == 1 else ""
        for piece in _pack(_paragraphs(body), max_chars):
            out.append(Chunk(text=piece, title=heading or path.stem, condition=condition,
                             source=f"document: {path.name}", section=heading, doc=str(path.resolve())))
    if not out:
        raise InputError(f"{path}: no text found")
    return out


def iter_documents(sources: list[str | Path]) -> Iterator[Path]:
    """Files of ``sources`` (files, or folders searched recursively for supported suffixes), sorted."""
    for src in sources:
        src = Path(src)
        if src.is_dir():
            yield from sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        elif src.is_file():
            yield src
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")


def _pdf_pages(path: Path) -> Iterator[tuple[int, str]]:
    try:
        from pypdf import PdfReader  # optional dependency (extra ``cqa``)
        from pypdf.errors import PdfReadError
    except ImportError:
        raise ImportError("reading PDF documents needs pypdf: pip install 'ecgalign[cqa]'") from None
    try:
        reader = PdfReader(str(path))
        for i, page in enumerate(reader.pages, start=1):
            yield i, page.extract_text() or ""
    except (PdfReadError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read PDF: {exc}") from exc


def _markdown_sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading path "A > B", body) of each Markdown section; text before the first heading has ""."""
    path: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            if any(b.strip() for b in body):
                yield " > ".join(path), "\n".join(body)
            level = len(m.group(1))
            path = path[: level - 1] + [""] * max(0, level - 1 - len(path)) + [m.group(2)]
            path = [p for p in path if p]
            body = []
        else:
            body.append(line)
    if any(b.strip() for b in body):
        yield " > ".join(path), "\n".join(body)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _pack(paragraphs: list[str], max_chars: int) -> list[str]:
    """Greedy packing of paragraphs (and of sentences of an over-long paragraph) into <= max_chars pieces."""
    pieces: list[str] = []
    for para in paragraphs:
        units = [para] if len(para) <= max_chars else split_sentences(para)
        for unit in units:
            if pieces and len(pieces[-1]) + 1 + len(unit) <= max_chars:
                pieces[-1] = f"{pieces[-1]} {unit}"
            else:
                pieces.append(unit)
    return pieces
