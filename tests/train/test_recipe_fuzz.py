"""Fuzzing the recipe loader (issue 11): any --set override, any YAML recipe file and any saved recipe mapping
either loads or raises one of the project's named errors (``ECGAlignError``), never another exception."""

from __future__ import annotations

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgalign.data.errors import ECGAlignError
from ecgalign.recipes import schema
from ecgalign.tasks import load_recipe, recipe_from_dict

KEYS = ["data.batch_size", "data.fs", "data.leads", "data.bandpass", "model.encoder", "model.encoder_kwargs",
        "model.proj_dim", "objective.contrastive", "objective.mask_ratio", "objective.temperature", "optim.lr",
        "optim.betas", "train.precision", "train.devices", "task", "name", "objective.gram", "no.such.key"]
VALUES = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.text(string.printable, max_size=12), st.none(),
                   st.lists(st.integers(-3, 3), max_size=3), st.just("{a: 1}"), st.just("[unclosed"))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ok_or_named(fn) -> None:
    try:
        fn()
    except ECGAlignError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=3), st.sampled_from(schema.list_recipes()))
def test_any_set_override_loads_or_is_named(sets, recipe):
    texts = [f"{k}={v}" for k, v in sets]
    _ok_or_named(lambda: load_recipe(recipe, sets=texts))


@FUZZ
@given(st.text(string.printable, max_size=40))
def test_any_override_text_loads_or_is_named(text):
    _ok_or_named(lambda: load_recipe("merit", sets=[text]))


@FUZZ
@given(st.dictionaries(st.sampled_from(["data", "model", "objective", "optim", "train", "task", "name", "x"]),
                       st.one_of(VALUES, st.dictionaries(st.sampled_from(["batch_size", "lr", "encoder", "fs", "y"]),
                                                         VALUES, max_size=3)), max_size=4))
def test_any_saved_recipe_mapping_loads_or_is_named(mapping):
    _ok_or_named(lambda: recipe_from_dict(mapping))


@FUZZ
@given(st.text(string.printable, max_size=80))
def test_any_recipe_file_loads_or_is_named(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("r") / "fuzz.yaml"
    path.write_text(text)
    _ok_or_named(lambda: load_recipe(str(path)))


def test_the_fuzzer_reaches_real_errors():
    """The named errors above are really raised (the fuzz tests would pass vacuously otherwise)."""
    import pytest

    with pytest.raises(ECGAlignError):
        load_recipe("merit", sets=["data.batch_size=abc"])
    with pytest.raises(ECGAlignError):
        recipe_from_dict({"objective": "x"})
    with pytest.raises(ECGAlignError):
        load_recipe("merit", sets=["no.such.key=1"])
    assert yaml.safe_load("a: 1") == {"a": 1}


def test_a_mapping_or_number_for_a_text_setting_is_named():
    # found by the fuzzer: the eee recipe's check called str methods on whatever --set model.encoder held
    for recipe in schema.list_recipes():
        for text in ("model.encoder={a: 1}", "model.encoder=3", "data.text_field=[1]"):
            try:
                load_recipe(recipe, sets=[text])
            except ECGAlignError as exc:
                assert "must be" in str(exc), (recipe, text, exc)
            else:
                raise AssertionError(f"{recipe}: {text} loaded")


def test_a_recipe_file_whose_keys_are_not_names_is_named(tmp_path):
    # found by the fuzzer: YAML "?" is {None: None}, and the unknown-key hint called difflib on None
    for text in ("?", "1: 2", "data: {3: 4}"):
        path = tmp_path / "odd.yaml"
        path.write_text(text)
        try:
            load_recipe(str(path))
        except ECGAlignError as exc:
            assert "keys must be setting names" in str(exc), (text, exc)
        else:
            raise AssertionError(f"{text!r} loaded")
