"""Fuzzing (hypothesis, bounded budget): every reader, the store and the WFDB header parser, fed fixtures written
here and then damaged (truncated, overwritten or extended bytes; a CSV/header cell replaced by arbitrary text),
raise only the project's named errors (ECGAlignError) and never any other exception (issue 11)."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgalign.data.errors import ECGAlignError
from ecgalign.data.readers import open_dataset
from ecgalign.data.readers.wfdb_io import parse_header
from ecgalign.data.store import ECGStore
from ecgalign.data.verify import verify_store

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A damage: (kind, file index, position, bytes, text).
DAMAGE = st.tuples(st.sampled_from(["truncate", "overwrite", "append", "cell"]), st.integers(0, 10**6),
                   st.integers(0, 10**9), st.binary(min_size=1, max_size=24),
                   st.text(max_size=16) | st.sampled_from(["", "nan", "-1", "1e309", "None", "{'NORM': None}",
                                                          "abc", "0", "[]", "/", "1/0", "'"]))


def _write_fixtures(root: Path) -> dict[str, Path]:
    from tests.data.test_reader_challenge import digital, write_record
    from tests.data.test_reader_code15 import write_code15
    from tests.data.test_reader_cpsc2018 import write_ecg, write_reference
    from tests.data.test_reader_mimic_ecg import write_mimic
    from tests.data.test_reader_ptbxl import write_ptbxl
    from tests.data.test_store import make_record, write

    rng = np.random.default_rng(0)
    out = {}
    out["challenge"] = root / "challenge"
    for name in ("E00001", "E00002"):
        write_record(out["challenge"], name, digital(rng.normal(0, 0.5, (12, 200))))
    out["code15"] = root / "code15"
    write_code15(out["code15"])
    out["cpsc2018"] = root / "cpsc"
    for name in ("A0001", "A0002"):
        write_ecg(out["cpsc2018"], name, rng.normal(0, 0.4, (12, 600)))
    write_reference(out["cpsc2018"], ["A0001,5,,", "A0002,1,2,"])
    out["mimic-iv-ecg"] = write_mimic(root / "mimic")
    out["npz-signals"] = root / "npz"
    out["npz-signals"].mkdir()
    np.savez(out["npz-signals"] / "signals.npz", X=rng.standard_normal((3, 12, 100)).astype(np.float16),
             ecg_id=np.array([1, 2, 3]))
    out["ptbxl"] = write_ptbxl(root / "ptbxl")
    out["store"] = root / "store"
    write(out["store"], [make_record(i) for i in range(6)], shard_records=4)
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    return _write_fixtures(tmp_path_factory.mktemp("fuzz"))


def _damage(root: Path, damage: tuple) -> Path:
    """Apply one damage to one file under ``root``; returns the file."""
    kind, which, pos, data, text = damage
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock")
    path = files[which % len(files)]
    raw = path.read_bytes()
    where = pos % (len(raw) + 1)
    if kind == "truncate":
        raw = raw[:where]
    elif kind == "overwrite":
        raw = raw[:where] + data + raw[where + len(data):]
    elif kind == "append":
        raw = raw + data
    elif path.suffix in (".csv", ".hea"):
        raw = _replace_cell(raw.decode("latin-1"), pos, text).encode("utf-8", "surrogatepass")
    else:
        raw = raw[:where] + text.encode("utf-8", "surrogatepass") + raw[where + 1:]
    path.write_bytes(raw)
    return path


def _replace_cell(content: str, pos: int, text: str) -> str:
    if "," in content.splitlines()[0] if content else False:
        rows = list(csv.reader(io.StringIO(content)))
        r = pos % len(rows)
        if rows[r]:
            rows[r][pos // 7 % len(rows[r])] = text
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()
    lines = content.splitlines() or [""]
    tokens = lines[pos % len(lines)].split(" ")
    tokens[pos // 7 % len(tokens)] = text
    lines[pos % len(lines)] = " ".join(tokens)
    return "\n".join(lines) + "\n"


def _only_named_errors(action: Callable[[], object]) -> None:
    try:
        action()
    except ECGAlignError:
        pass


def _exercise_reader(root: Path, fmt: str) -> None:
    try:
        reader = open_dataset(root, fmt)
    except ECGAlignError:
        return
    _only_named_errors(reader.scan)
    _only_named_errors(reader.metadata)
    _only_named_errors(reader.describe)
    for i in range(len(reader)):
        _only_named_errors(lambda i=i: reader.read(i))
    if hasattr(reader, "close"):
        reader.close()


def _fuzz_copy(fixtures: dict[str, Path], name: str, damages: list[tuple], run: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(fixtures[name], Path(tmp) / name))
        for damage in damages:
            _damage(root, damage)
        run(root)


@pytest.mark.parametrize("fmt", ["challenge", "code15", "cpsc2018", "mimic-iv-ecg", "npz-signals", "ptbxl"])
@FUZZ
@given(damages=st.lists(DAMAGE, min_size=1, max_size=2))
def test_readers_raise_only_named_errors(fixtures, fmt, damages):
    _fuzz_copy(fixtures, fmt, damages, lambda root: _exercise_reader(root, fmt))


def _exercise_store(root: Path) -> None:
    try:
        store = ECGStore(root)
    except ECGAlignError:
        _only_named_errors(lambda: verify_store(root))
        return
    _only_named_errors(lambda: store.signals(range(len(store))))
    _only_named_errors(lambda: store.meta)
    _only_named_errors(lambda: store.record(len(store) - 1))
    _only_named_errors(lambda: store.labels("rhythm"))
    _only_named_errors(lambda: store.column("record_id"))
    _only_named_errors(store.skipped)
    _only_named_errors(lambda: verify_store(root))


@FUZZ
@given(damages=st.lists(DAMAGE, min_size=1, max_size=2))
def test_store_raises_only_named_errors(fixtures, damages):
    _fuzz_copy(fixtures, "store", damages, _exercise_store)


HEADER_LINES = st.lists(
    st.text(alphabet=st.sampled_from(list("0123456789 ./()+-xe:#abcdefmVuIV\t")), max_size=40)
    | st.sampled_from(["r 12 500 5000", "r.dat 16 1000.0(0)/mV 16 0 0 0 0 I", "# Age: 50", "r/2 1 500 10"]),
    max_size=6,
)


@FUZZ
@given(lines=HEADER_LINES, garbage=st.binary(max_size=30))
def test_header_parser_raises_only_record_errors(lines, garbage):
    with tempfile.TemporaryDirectory() as tmp:
        hea = Path(tmp) / "r.hea"
        hea.write_bytes("\n".join(lines).encode() + garbage)
        _only_named_errors(lambda: parse_header(hea))
