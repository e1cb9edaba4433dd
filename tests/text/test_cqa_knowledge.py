"""The packaged CQA knowledge corpus: validation, code lookups, name matching, chunking."""

from __future__ import annotations

import pytest

from ecgalign.data.errors import InputError
from ecgalign.data.labels import SCPStatements
from ecgalign.data.labels.snomed import snomed_table
from ecgalign.data.readers.code15 import CODE_CLASSES
from ecgalign.data.readers.cpsc2018 import CPSC2018_CLASSES
from ecgalign.text.cqa.chunking import corpus_chunks, document_chunks, split_sentences
from ecgalign.text.cqa.knowledge import SECTIONS, WAVEFORM_SECTIONS, load_corpus, packaged_corpus

ENTRY = """
conditions:
  - id: {id}
    name: {name}
    aliases: [{alias}]
    codes: {{scp: [{code}]}}
    source: {{kind: guideline, ref: "some guideline"}}
    definition: A definition.
    criteria: Criteria sentence one. Criteria sentence two.
    leads: Lead pattern.
    differentials: Other things.
"""


def _write(tmp_path, file, **kw):
    path = tmp_path / file
    path.write_text(ENTRY.format(**kw))
    return path


def test_packaged_corpus_loads_with_all_sections():
    corpus = packaged_corpus()
    assert len(corpus) > 40
    for cond in corpus.conditions.values():
        assert set(cond.sections) == set(SECTIONS)
        assert cond.source_kind in ("guideline", "textbook chapter") and cond.source_ref


def test_corpus_covers_every_label_set_class():
    """Every PTB-XL SCP statement, challenge SNOMED code, CPSC2018 / CODE class and EEE category."""
    corpus = packaged_corpus()
    scp = SCPStatements.bundled().codes
    assert len(scp) == 71 and set(scp) <= corpus.codes("scp")
    assert {c.code for c in snomed_table()} <= corpus.codes("snomed")
    assert set(CPSC2018_CLASSES) <= corpus.codes("cpsc2018")
    assert set(CODE_CLASSES) <= corpus.codes("code")
    assert corpus.codes("eee") == {"reduced-ef-heart-failure", "left-ventricular-hypertrophy", "dilated-left-ventricle",
                                   "valvular-disease", "cardiomyopathy", "pericardial-disease"}


def test_ptbxl500_statement_table_is_covered(shared_data):
    table = SCPStatements.from_csv(shared_data / "ptbxl-500" / "scp_statements.csv")
    assert set(table.codes) <= packaged_corpus().codes("scp")


def test_waveform_sentences_name_only_their_own_condition():
    """The extractive composer quotes these sentences: naming another condition (other than a declared
    feature of this one) would add a finding."""
    corpus = packaged_corpus()
    offenders = []
    for cond in corpus.conditions.values():
        for section in WAVEFORM_SECTIONS:
            for sentence in split_sentences(cond.sections[section]):
                others = [c for c in corpus.mentioned(sentence, negation=False) if c not in corpus.allowed([cond.id])]
                if others or sentence.split()[0] in ("It", "They", "This", "These"):
                    offenders.append((cond.id, sentence, others))
    assert not offenders


def test_codes_resolve_to_conditions():
    corpus = packaged_corpus()
    ids, unknown = corpus.for_codes("scp", ["SR", "AFIB", "NOPE", "SR"])
    assert ids == ["sinus-rhythm", "atrial-fibrillation"] and unknown == ["NOPE"]
    assert corpus.for_code("snomed", "164889003") == "atrial-fibrillation"
    assert corpus.for_code("cpsc2018", "AF") == "atrial-fibrillation"


def test_mentioned_longest_match_abbreviations_and_negation():
    corpus = packaged_corpus()
    assert corpus.mentioned("Sinus bradycardia with PVC.") == ["sinus-bradycardia", "premature-ventricular-complex"]
    assert corpus.mentioned("no atrial fibrillation, sinus rhythm") == ["sinus-rhythm"]
    assert corpus.mentioned("no atrial fibrillation", negation=False) == ["atrial-fibrillation"]
    assert corpus.mentioned("pvc") == []  # abbreviations are case-sensitive
    assert corpus.mentioned("atrial flutter-like waves") == []  # whole words only


@pytest.mark.parametrize("change, message", [
    ({"id": "Bad Id"}, "id must be"),
    ({"alias": "sinus rhythm"}, "used by both"),
    ({"code": "SR"}, "listed by both"),
    ({"alias": "other name]\n    features: [nope"}, "not other condition ids"),
])
def test_invalid_entries_raise_naming_the_file(tmp_path, change, message):
    base = {"id": "x", "name": "some condition", "alias": "other name", "code": "X1"}
    good = _write(tmp_path, "a.yaml", id="sinus-rhythm", name="sinus rhythm", alias="NSR", code="SR")
    bad = _write(tmp_path, "b.yaml", **{**base, **change})
    with pytest.raises(InputError, match=message) as info:
        load_corpus([good, bad])
    assert "b.yaml" in str(info.value)


def test_missing_section_and_bad_source(tmp_path):
    path = _write(tmp_path, "c.yaml", id="x", name="x name", alias="y name", code="X")
    path.write_text(path.read_text().replace("    leads: Lead pattern.\n", ""))
    with pytest.raises(InputError, match="'leads'"):
        load_corpus([path])
    path = _write(tmp_path, "d.yaml", id="x", name="x name", alias="y name", code="X")
    path.write_text(path.read_text().replace("kind: guideline", "kind: blog"))
    with pytest.raises(InputError, match="source must be"):
        load_corpus([path])


def test_corpus_chunks_one_per_section_with_stable_ids():
    corpus = packaged_corpus()
    chunks = corpus_chunks(corpus)
    assert len(chunks) == len(corpus) * len(SECTIONS)
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c.id for c in corpus_chunks(corpus)] == [c.id for c in chunks]


def test_markdown_chunks_tag_conditions_from_headings(tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# Atrial flutter\n\nSawtooth waves in the inferior leads.\n\n## Treatment\n\nAblation.\n\n"
                   "# Miscellany\n\n" + "A long paragraph sentence. " * 80)
    chunks = document_chunks(doc, packaged_corpus(), max_chars=300)
    assert chunks[0].condition == "atrial-flutter" and chunks[0].source == "document: notes.md"
    assert chunks[1].section == "Atrial flutter > Treatment"
    assert all(len(c.text) <= 300 for c in chunks)
    assert {c.condition for c in chunks if c.section == "Miscellany"} == {""}


def test_pdf_chunks(tmp_path):
    path = tmp_path / "book.pdf"
    path.write_bytes(_tiny_pdf("Atrial flutter shows regular sawtooth waves in lead II."))
    chunks = document_chunks(path, packaged_corpus())
    assert "sawtooth waves" in chunks[0].text and chunks[0].section == "page 1"


def test_unsupported_and_broken_documents(tmp_path):
    with pytest.raises(InputError, match="unsupported document type"):
        document_chunks(tmp_path / "x.docx")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(InputError, match="broken.pdf"):
        document_chunks(broken)


def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF with one line of Helvetica text, xref offsets computed."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
