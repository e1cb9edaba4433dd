"""Report normalisation and the German/Swedish -> English phrase table."""

from __future__ import annotations

import pandas as pd
import pytest

from ecgalign.data.reports import normalize_report, phrase_table, report_language, translate_report


@pytest.mark.parametrize(
    ("raw", "english"),
    [
        ("sinusrhythmus periphere niederspannung", "sinus rhythm low limb lead voltage"),
        ("sinusrhythmus unvollstÄndiger rechtsschenkelblock sonst normales ekg",
         "sinus rhythm incomplete right bundle branch block otherwise normal ecg"),
        ("sinusrhythmus amplitudenkriterien f#r linkshypertrophie",
         "sinus rhythm voltage criteria for left ventricular hypertrophy"),
        ("sinusrhythmus qrs(t) abnormal    inferiorer infarkt     wahrscheinlich alt",
         "sinus rhythm qrs(t) abnormal inferior infarction probably old"),
        ("ventrikulÄre extrasystole(n), bigeminus sinusrhythmus", "ventricular extrasystole(s), bigeminy sinus rhythm"),
        ("sinusrytm vÄnster el-axel vÄnstersidigt skÄnkelblock",
         "sinus rhythm left axis deviation left bundle branch block"),
        ("fÖrmaksflimmer med hÖg kammarfrekvens extrem vÄnster el-axel",
         "atrial fibrillation with rapid ventricular response extreme left axis deviation"),
    ],
)
def test_real_ptbxl_statements_render_in_english(raw, english):
    assert translate_report(raw) == english


def test_the_longest_phrase_wins_and_only_whole_words_match():
    # "ueberdrehter linkstyp" is left axis deviation, plain "linkstyp" only a left axis
    assert translate_report("sinusrhythmus ueberdrehter linkstyp") == "sinus rhythm left axis deviation"
    assert translate_report("sinusrhythmus linkstyp") == "sinus rhythm left axis"
    # "alt" (old) must not fire inside another word
    assert translate_report("sinusrhythmus alternierend") == "sinus rhythm alternierend"


def test_normalisation_repairs_encoding_and_strips_boilerplate():
    assert normalize_report("  Sinus  Rhythm.\tNormal ECG .  ") == "sinus rhythm. normal ecg."
    assert normalize_report("schweiáausbruch") == "schweißausbruch"
    # edit notes spell out the SCP codes: they must not reach the text a model sees
    assert normalize_report("sinus rhythm. normal ecg. Edit: NORM 100, rSIII(NORM 100)") == "sinus rhythm. normal ecg."
    assert normalize_report("4.46 sinusrhythmus normales ekg unbestätigter bericht") == "sinusrhythmus normales ekg"
    assert normalize_report("sinus rhythm. unconfirmed report.") == "sinus rhythm."
    assert normalize_report("trace only requested.") == ""
    # a dose in the middle of a note is not a version tag
    assert "0.2" in normalize_report("novodigal 0.2 1x1 sinusrhythmus")
    assert normalize_report("sinusrytm ó¿  ó¬ st-t") == "sinusrytm st-t"
    assert normalize_report(None) == normalize_report("") == normalize_report("   ") == ""


def test_language_detection_and_english_passes_through():
    assert report_language("sinusrhythmus linkstyp") == "de"
    assert report_language("sinusrytm normalt ekg") == "sv"
    english = "Sinus rhythm. Left axis deviation. Left anterior fascicular block."
    assert report_language(english) == "en"
    assert translate_report(english) == normalize_report(english)


@pytest.mark.parametrize(("language", "lead_in"), [("de", "sinusrhythmus"), ("sv", "sinusrytm")])
def test_every_phrase_of_the_table_translates(language, lead_in):
    table = phrase_table()[language]
    assert len(table) > 50
    for phrase, english in table.items():
        assert translate_report(f"{lead_in} {phrase}") == f"sinus rhythm {english.lower()}", phrase


@pytest.mark.realdata
def test_every_real_ptbxl_report_comes_out_in_english(shared_data):
    reports = pd.read_csv(shared_data / "ptbxl-500" / "ptbxl_database.csv").report
    languages = reports.map(report_language).value_counts()
    assert languages["de"] > 200 and languages["sv"] > 50 and languages["en"] > 100
    english = reports.map(translate_report)
    assert (english.map(report_language) == "en").all()
