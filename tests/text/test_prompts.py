"""Zero-shot prompt sets: every class of every scheme, in scheme order, with several distinct prompts."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
import yaml

from ecgalign.data.labels import scp_scheme
from ecgalign.data.labels.snomed import snomed_scheme, snomed_table
from ecgalign.data.readers.code15 import code_scheme
from ecgalign.data.readers.cpsc2018 import cpsc2018_scheme
from ecgalign.text.prompts import available_prompt_sets, parse_prompt_sets, prompt_set

SCHEMES = {"ptbxl": scp_scheme(), "cpsc2018": cpsc2018_scheme(), "code": code_scheme(), "challenge": snomed_scheme()}
EXPECTED_SETS = [(dataset, label_set) for dataset, scheme in SCHEMES.items() for label_set in scheme.set_names()]


def _document(dataset: str) -> dict:
    text = resources.files("ecgalign.text.prompt_sets").joinpath(f"{dataset}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def test_every_label_set_of_every_scheme_is_available():
    assert available_prompt_sets() == EXPECTED_SETS
    sizes = {pair: len(prompt_set(*pair)) for pair in EXPECTED_SETS}
    assert sizes == {
        ("ptbxl", "superdiagnostic"): 5, ("ptbxl", "subdiagnostic"): 23, ("ptbxl", "form"): 19,
        ("ptbxl", "rhythm"): 12, ("ptbxl", "all"): 71, ("ptbxl", "diagnostic"): 44,
        ("cpsc2018", "cpsc2018"): 9, ("code", "code"): 6, ("challenge", "scored"): 26, ("challenge", "snomed"): 133,
    }


@pytest.mark.parametrize(("dataset", "label_set"), EXPECTED_SETS)
def test_prompt_set_is_complete_ordered_and_clean(dataset, label_set):
    prompts = prompt_set(dataset, label_set)
    assert list(prompts) == SCHEMES[dataset].classes(label_set)
    owner: dict[str, str] = {}
    for cls, texts in prompts.items():
        assert len(texts) >= 3, cls
        assert len(set(texts)) == len(texts), cls
        for text in texts:
            assert isinstance(text, str) and text.strip() == text and text, (cls, text)
            assert "{" not in text and "}" not in text, (cls, text)
            assert text == text.lower(), (cls, text)
            assert text not in owner, f"{text!r} is a prompt of both {owner.get(text)} and {cls}"
            owner[text] = cls


def test_csn_is_an_alias_and_single_set_datasets_default():
    assert prompt_set("csn", "scored") == prompt_set("challenge", "scored")
    assert prompt_set("CSN", "snomed") == prompt_set("challenge", "snomed")
    assert prompt_set("cpsc2018") == prompt_set("cpsc2018", "cpsc2018")
    assert prompt_set("code") == prompt_set("code", "code")


def test_unknown_dataset_and_label_set_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"'mitbih'.*'ptbxl', 'cpsc2018', 'code', 'challenge'.*'csn'"):
        prompt_set("mitbih", "all")
    with pytest.raises(ValueError, match=r"'superclass' for dataset 'ptbxl'; available: \['superdiagnostic'"):
        prompt_set("ptbxl", "superclass")
    with pytest.raises(ValueError, match=r"'score' for dataset 'challenge'; available: \['scored', 'snomed'\]"):
        prompt_set("csn", "score")
    with pytest.raises(ValueError, match="several prompt sets"):
        prompt_set("ptbxl")


def test_returned_lists_are_copies():
    first = prompt_set("code", "code")
    first["AF"].append("mutated")
    first.pop("SB")
    again = prompt_set("code", "code")
    assert "mutated" not in again["AF"] and "SB" in again


def test_code_st_is_sinus_tachycardia_not_an_st_segment_finding():
    texts = prompt_set("code", "code")["ST"]
    assert "sinus tachycardia" in texts
    assert not any("st segment" in t or "st elevation" in t or "st depression" in t for t in texts)


def test_ptbxl_meanings_follow_the_scp_table():
    sub = prompt_set("ptbxl", "subdiagnostic")
    assert any("first, second or third degree" in t for t in sub["_AVB"])
    assert sub["LVH"] == prompt_set("ptbxl", "all")["LVH"]  # a single-statement subclass reuses its statement
    assert prompt_set("ptbxl", "form")["NDT"][0] == "non-diagnostic t abnormalities"
    assert prompt_set("ptbxl", "rhythm")["PACE"][0] == "normal functioning artificial pacemaker"
    assert "old or acute" in prompt_set("ptbxl", "superdiagnostic")["MI"][1]


def test_snomed_templated_classes_are_few_documented_and_never_scored():
    spec = _document("challenge")["sets"]["snomed"]
    templated = spec["templated"]["classes"]
    hand = spec["prompts"]
    assert len(hand) >= 40 and len(hand) + len(templated) == 133
    assert set(snomed_scheme().classes("scored")) <= set(hand)
    names = {c.abbreviation: c.name.lower() for c in snomed_table()}
    snomed = prompt_set("challenge", "snomed")
    for cls in templated:
        assert len(snomed[cls]) == 3 and snomed[cls][0] == names[cls]
        assert all(names[cls] in t for t in snomed[cls])


def _direct_sets(dataset: str) -> list[str]:
    return [name for name, spec in _document(dataset)["sets"].items() if "prompts" in spec]


@pytest.mark.parametrize(("dataset", "label_set"), [(d, s) for d in SCHEMES for s in _direct_sets(d)])
def test_load_rejects_a_missing_or_unknown_class(dataset, label_set):
    doc = _document(dataset)
    assert parse_prompt_sets(doc, dataset)  # the shipped document passes
    missing = copy.deepcopy(doc)
    dropped = next(iter(missing["sets"][label_set]["prompts"]))
    del missing["sets"][label_set]["prompts"][dropped]
    with pytest.raises(ValueError, match=rf"{dataset}-test: set '{label_set}': no prompts for classes \['{dropped}'\]"):
        parse_prompt_sets(missing, dataset, source=f"{dataset}-test")
    unknown = copy.deepcopy(doc)
    unknown["sets"][label_set]["prompts"]["NOT_A_CLASS"] = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"classes \['NOT_A_CLASS'\] are not classes of the set"):
        parse_prompt_sets(unknown, dataset)


def test_load_checks_derived_sets_and_templates():
    doc = _document("ptbxl")
    bad = copy.deepcopy(doc)
    del bad["sets"]["all"]["prompts"]["SR"]  # rhythm and all both need SR
    with pytest.raises(ValueError, match=r"set 'all': no prompts for classes \['SR'\]"):
        parse_prompt_sets(bad, "ptbxl")
    bad = copy.deepcopy(doc)
    bad["sets"]["form"] = {"from": "superdiagnostic"}
    with pytest.raises(ValueError, match=r"set 'form': no prompts for classes \['ABQRS'"):
        parse_prompt_sets(bad, "ptbxl")
    bad = copy.deepcopy(doc)
    bad["sets"]["rhythm"] = {"from": "rhythm"}
    with pytest.raises(ValueError, match="takes its prompts from 'rhythm', which writes none out"):
        parse_prompt_sets(bad, "ptbxl")
    bad = copy.deepcopy(doc)
    bad["sets"]["superclass"] = {"from": "all"}
    with pytest.raises(ValueError, match=r"label sets \['superclass'\] are not sets of 'ptbxl'"):
        parse_prompt_sets(bad, "ptbxl")

    doc = _document("challenge")
    bad = copy.deepcopy(doc)
    bad["sets"]["snomed"]["templated"]["templates"] = ["{name}", "ecg with {label}", "x {name}"]
    with pytest.raises(ValueError, match=r"only use the \{name\} placeholder"):
        parse_prompt_sets(bad, "challenge")
    bad = copy.deepcopy(doc)
    bad["sets"]["snomed"]["templated"]["classes"].append("AF")
    with pytest.raises(ValueError, match="'AF' is both written out and templated"):
        parse_prompt_sets(bad, "challenge")


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"NORM": ["normal", "normal"]}, "listed twice"),
        ({"NORM": ["normal", "{x} ecg"]}, "leftover template brace"),
        ({"NORM": ["normal", ""]}, "not a non-empty string"),
        ({"NORM": "normal ecg"}, "non-empty list of prompts"),
        ({"NORM": []}, "non-empty list of prompts"),
        ({"AF": ["normal ecg", "af"]}, r"'normal ecg' is used by both 'NORM' and 'AF'"),
    ],
)
def test_load_rejects_bad_prompts(prompts, message):
    doc = _document("cpsc2018")
    doc["sets"]["cpsc2018"]["prompts"].update(prompts)
    with pytest.raises(ValueError, match=message):
        parse_prompt_sets(doc, "cpsc2018")
