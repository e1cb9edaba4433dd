"""``ecgalign digitize``: the classic digitiser, ECG printout image(s) -> WFDB record(s) in millivolts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, fail, print_json, progress_bar, user_errors

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def _images(paths: list[Path]) -> list[Path]:
    """Image files named, or found (sorted, not recursively) in the folders named."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                fail(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            out += found
        elif path.exists():
            out.append(path)
        else:
            fail(f"{path}: no such file or folder")
    return out


def digitize(
    images: list[Path] = typer.Argument(..., help="Printout image file(s), or folder(s) of them."),
    out: Path = typer.Option(..., "--out", "-o", help="One image: the WFDB record to write (REC -> REC.hea + REC.dat). "
                                                     "Several: a folder, one record per image (named after it)."),
    layout: str = typer.Option("3x4+II", help="The printout's layout: 3x4+II (default), 3x4, 6x2 or 12x1; or auto "
                                              "(told from the number of evenly spaced trace rows, per image)."),
    fs: float = typer.Option(500.0, help="Sampling rate of the output record (Hz)."),
    seconds: float = typer.Option(10.0, help="Duration the printout covers (s)."),
    speed: float = typer.Option(25.0, help="Paper speed (mm/s)."),
    gain: str = typer.Option("10", help="Gain (mm/mV), or 'auto' to read it from the calibration pulses."),
    segmenter_path: Optional[Path] = typer.Option(None, "--segmenter", help="A learned trace segmenter (segmenter.pt "
                                                   "or its run folder, from `ecgalign train-digitizer`): its trace map "
                                                   "replaces the classic ink map."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary (and what was measured per image) as JSON."),
) -> None:
    """Digitise printouts: grid removal, page frames and text masked, trace rows, px/mm from the grid, 0 mV and
    t = 0 from the calibration pulses and the layout's geometry, the layout's time windows split into leads.
    Leads are NaN outside the windows the layout shows them in. Every image gets a status: ok; suspect (a check
    failed: written, and flagged with the reason); failed (unreadable: not written, reported). Exit code 0 when
    all are ok, 3 when some are suspect or failed, 1 when none could be written."""
    from ecgalign.render.digitize import DigitizeError, digitize_file
    from ecgalign.render.layout import check_layout

    with user_errors():
        if layout != "auto":
            check_layout(layout)
        if gain.strip().lower() == "auto":
            gain_mm = None
        else:
            try:
                gain_mm = float(gain)
            except ValueError:
                fail(f"--gain: expected mm/mV (e.g. 10) or 'auto', got {gain!r}")
        segmenter = None
        if segmenter_path is not None:
            from ecgalign.render.digitize.learned import TraceSegmenter

            segmenter = TraceSegmenter.load(segmenter_path)
        files = _images(images)
        single = len(files) == 1 and not images[0].is_dir()
        if not single and out.exists() and not out.is_dir():
            fail(f"{out}: several images are written to a folder, and this is a file")
        done: list[dict] = []
        skipped: list[dict] = []
        with progress_bar("digitize", enabled=not json_out and not single) as update:
            for k, image in enumerate(files):
                target = out if single else out / image.stem
                try:
                    result = digitize_file(image, target, layout, fs=fs, seconds=seconds, speed=speed, gain=gain_mm,
                                           segmenter=segmenter)
                except DigitizeError as exc:
                    if single:
                        raise
                    skipped.append({"image": str(image), "status": "failed", "reason": str(exc)})
                else:
                    item = {"image": str(image), **result.summary()}
                    if result.status == "failed":
                        skipped.append({"image": str(image), "status": "failed", "reason": "; ".join(result.flags)})
                    else:
                        done.append({"record": str(target), **item})
                update(k + 1, len(files))
    suspect = [item for item in done if item["status"] == "suspect"]
    counts = {"ok": len(done) - len(suspect), "suspect": len(suspect), "failed": len(skipped)}
    summary = {"out": str(out), "records": len(done), "skipped": len(skipped), "status": counts,
               "skipped_images": skipped[:50], "layout": layout, "results": done}
    code = 0 if not skipped and not suspect else (1 if not done else 3)
    if json_out:
        print_json(summary)
        if code:
            raise typer.Exit(code)
        return
    for item in done:
        for note in item["flags"] if item["status"] == "suspect" else []:
            err.print(f"suspect {item['image']}: {note}", soft_wrap=True)
    for item in skipped:
        reason = item["reason"].removeprefix(f"{item['image']}: ")
        err.print(f"failed {item['image']}: {reason}", soft_wrap=True)
    where = done[0]["record"] + ".hea/.dat" if single and done else f"{len(done)} WFDB record(s) to {out}"
    err.print(f"wrote {where}: {counts['ok']} ok, {counts['suspect']} suspect (written, flagged), "
              f"{counts['failed']} failed (not written)", soft_wrap=True)
    if code:
        raise typer.Exit(code)


def train_digitizer(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: segmenter.pt, log.jsonl and the resumable state."),
    data: str = typer.Option("synth:64:7", "--data", help="ECGs to draw printouts of: a store in mV, a dataset folder, "
                                                         "or synth:N[:SEED] (generated now)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N records."),
    steps: int = typer.Option(2000, min=1, help="Optimiser steps."),
    batch: int = typer.Option(8, min=1, help="Crops per step."),
    crop: int = typer.Option(192, min=16, help="Crop side in px (a multiple of 8)."),
    lr: float = typer.Option(2e-3, help="Peak learning rate (one-cycle schedule)."),
    dpi_min: float = typer.Option(100.0, "--dpi-min", help="Lowest printout resolution drawn."),
    dpi_max: float = typer.Option(300.0, "--dpi-max", help="Highest printout resolution drawn."),
    seed: int = typer.Option(0, help="Seeds the network, the pages drawn and the crops (same seed, same run)."),
    save_every: int = typer.Option(250, min=1, help="Validate and checkpoint every N steps (a rerun resumes there)."),
    threads: int = typer.Option(1, min=1, help="Torch threads."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train the learned digitiser's trace segmenter (a small U-Net) on printouts drawn from --data with random
    page conventions and scanner/photo artefacts (augment=wild), target = the exact trace pixels. Use it with
    `ecgalign digitize --segmenter OUT`. Records that cannot be drawn (not 12 leads in mV, another rate or
    length than the first) are skipped and counted."""
    import numpy as np
    import torch

    from ecgalign.data.record import LEADS_12
    from ecgalign.render.digitize.learned import train_segmenter
    from ecgalign.synth.realism.sample import is_normalised, records_of

    with user_errors():
        torch.set_num_threads(threads)
        if not 0 < dpi_min <= dpi_max:
            fail(f"--dpi-min/--dpi-max: expected 0 < min <= max, got {dpi_min}, {dpi_max}")
        signals, skipped, fs, n = [], [], None, None
        for rec in records_of(data, limit):
            if isinstance(rec, dict):
                skipped.append(rec)
                continue
            problem = None
            if set(LEADS_12) - set(rec.leads):
                problem = f"needs the 12 standard leads, has {list(rec.leads)}"
            elif is_normalised(rec):
                problem = "normalised signals: printouts need millivolts (use a raw-preset store or the dataset folder)"
            elif fs is not None and (rec.fs != fs or rec.signal.shape[1] < n):
                problem = f"{rec.fs:g} Hz x {rec.signal.shape[1]} samples; the first record set {fs:g} Hz x {n}"
            if problem is None:
                sig = np.asarray(rec.signal, dtype=np.float32)[[rec.leads.index(lead) for lead in LEADS_12]]
                if not np.isfinite(sig).all():
                    problem = "non-finite samples"
            if problem:
                skipped.append({"record_id": rec.record_id, "problem": problem})
                continue
            if fs is None:
                fs, n = rec.fs, sig.shape[1]
            signals.append(sig[:, :n])
        if not signals:
            fail(f"{data}: no record could be drawn ({len(skipped)} skipped: {skipped[:3]})")

        def log(entry: dict) -> None:
            if not json_out:
                err.print(f"step {entry['step']}/{steps}: loss {entry['loss']:.4f}, validation pixel F1 "
                          f"{entry.get('f1', float('nan')):.3f} ({entry['seconds']:.0f} s)")

        result = train_segmenter(np.stack(signals), float(fs), out, steps=steps, batch=batch, crop=crop, lr=lr,
                                 seed=seed, dpi=(dpi_min, dpi_max), save_every=save_every, log=log)
    result.update(records=len(signals), skipped=len(skipped), skipped_records=skipped[:50])
    if json_out:
        print_json(result)
    else:
        err.print(f"wrote {result['out']} ({len(signals)} records, {len(skipped)} skipped; validation "
                  f"{result['validation']})", soft_wrap=True)
