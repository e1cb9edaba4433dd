"""``ecgalign image-table``: a labelled table of printout images (an evaluation dataset for image models).

An image table is a CSV with an ``image`` column (paths relative to the CSV's folder), ``record_id``,
``patient_id``, ``fold`` and one column per label set (class names joined by ``;``): ``ecgalign eval ...
--data TABLE.csv`` runs every protocol on it (``ecgalign.eval.data``). This command builds one from image
files and a labelled dataset (a store or a raw dataset folder), matching each image to its record by id, e.g.
ecg-image-kit printouts of PTB-XL records (ECG-Scan, 000_290557cf3ffea0eb, §5.2: evaluation on printouts).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, fail, print_json, user_errors

# our renderer's file names: <dataset>_<record_id>_<rate>hz (ecgalign.render.io.output_stem)
OUR_STEM = re.compile(r"^.+?_(.+)_[0-9.]+hz$")
FIRST_NUMBER = re.compile(r"(\d+)")


def image_files(paths: list[Path]) -> list[Path]:
    """The image files among ``paths``: files as given, folders searched recursively (sorted)."""
    from ecgalign.hub.embed import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                fail(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder or below")
            files += found
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                fail(f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
            files.append(path)
        else:
            fail(f"{path}: no such file or folder")
    return files


def candidate_ids(stem: str, pattern: re.Pattern | None) -> list[str]:
    """Record ids a file stem may name. With ``pattern``: its first group (or whole match) only. Without: the
    stem itself, the id inside our renderer's ``<dataset>_<id>_<rate>hz``, then the stem's first number."""
    if pattern is not None:
        m = pattern.search(stem)
        return [m.group(1) if m and m.groups() else m.group(0)] if m else []
    out = [stem]
    if m := OUR_STEM.match(stem):
        out.append(m.group(1))
    if m := FIRST_NUMBER.search(stem):
        out.append(m.group(1))
    return out


def match_record(candidates: list[str], by_id: dict[str, int], by_number: dict[int, int]) -> int | None:
    """Row of the first candidate that is a record id, exactly or as the same integer (``00001`` = ``1``)."""
    for c in candidates:
        if c in by_id:
            return by_id[c]
        if c.isdigit() and int(c) in by_number:
            return by_number[int(c)]
    return None


def image_table(
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    labels: Path = typer.Option(..., "--labels", help="A labelled store or raw dataset folder (e.g. ../shared/data/ptbxl-500)."),
    out: Path = typer.Option(..., "--out", "-o", help="The CSV to write (image paths relative to its folder)."),
    task: Optional[str] = typer.Option(None, "--task", help="Label set(s) to write, comma-separated (default: all)."),
    id_pattern: Optional[str] = typer.Option(
        None, "--id-pattern", help="Regex on the file stem whose first group is the record id (default: the stem, "
                                   "our <dataset>_<id>_<rate>hz names, else the stem's first number)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Layout of a raw dataset folder (default: detected)."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Write an image table (image, record_id, patient_id, fold, one column per label set) for
    `ecgalign eval ... --data TABLE.csv`: each image is matched to its record by id; images that match no
    record are left out, counted and named (exit code 3)."""
    import pandas as pd

    from ecgalign.eval.data import load_eval_data
    from ecgalign.hub.io import atomic_write_text

    with user_errors():
        pattern = None
        if id_pattern is not None:
            try:
                pattern = re.compile(id_pattern)
            except re.error as exc:
                fail(f"--id-pattern {id_pattern!r}: not a regular expression ({exc})")
        files = image_files(images)
        data = load_eval_data(labels, fmt)
        sets = list(data.label_sets) if task is None else [t.strip() for t in task.split(",") if t.strip()]
        unknown = [s for s in sets if s not in data.label_sets]
        if unknown or not sets:
            fail(f"--task {task}: {labels} has label sets {sorted(data.label_sets)}, not {unknown or 'none chosen'}")
        for s in sets:
            bad = [c for c in data.label_sets[s] if ";" in c]
            if bad:
                fail(f"{labels}: label set {s} has class names with ';' ({bad[:3]}), the table's separator")
        meta = data.meta.reset_index(drop=True)
        ids = meta["record_id"].astype(str).tolist()
        by_id = {r: i for i, r in enumerate(ids)}
        by_number = {int(r): i for i, r in enumerate(ids) if r.isdigit()}
        root = out.resolve().parent
        rows, unmatched = [], []
        for f in files:
            i = match_record(candidate_ids(f.stem, pattern), by_id, by_number)
            if i is None:
                unmatched.append(str(f))
                continue
            rec = meta.iloc[i]
            path = f.resolve()
            row = {"image": str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
                   "record_id": ids[i], "patient_id": rec.get("patient_id"), "fold": rec.get("fold")}
            row.update({s: ";".join(sorted(rec[f"labels_{s}"])) for s in sets})
            rows.append(row)
        if not rows:
            fail(f"none of the {len(files)} image(s) matched a record id of {labels} (e.g. {Path(unmatched[0]).stem!r}"
                 f" vs record ids {ids[:3]}); name the id's part of the file stem with --id-pattern")
        table = pd.DataFrame(rows)
        table["code_system"] = data.code_system
        if table["fold"].notna().all():
            table["fold"] = table["fold"].astype(int)
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, buffer.getvalue())
    summary = {"out": str(out), "images": len(rows), "records": int(table["record_id"].nunique()),
               "label_sets": sets, "unmatched": len(unmatched), "unmatched_images": unmatched[:50]}
    if json_out:
        print_json(summary)
    else:
        err.print(f"wrote {len(rows)} image(s) of {summary['records']} record(s) with label sets {', '.join(sets)} "
                  f"to {out}{f'; {len(unmatched)} image(s) matched no record: ' + ', '.join(unmatched[:5]) if unmatched else ''}",
                  soft_wrap=True)
    if unmatched:
        raise typer.Exit(3)
