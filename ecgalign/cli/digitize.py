"""``ecgalign digitize``: the classic digitiser, ECG printout image(s) -> WFDB record(s) in millivolts."""

from __future__ import annotations

from pathlib import Path

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
    layout: str = typer.Option("3x4+II", help="The printout's layout: 3x4+II (default), 3x4, 6x2 or 12x1."),
    fs: float = typer.Option(500.0, help="Sampling rate of the output record (Hz)."),
    seconds: float = typer.Option(10.0, help="Duration the printout covers (s)."),
    speed: float = typer.Option(25.0, help="Paper speed (mm/s)."),
    gain: str = typer.Option("10", help="Gain (mm/mV), or 'auto' to read it from the calibration pulses."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary (and what was measured per image) as JSON."),
) -> None:
    """Digitise printouts: grid removal, trace rows, px/mm from the grid, 0 mV and timing from the calibration
    pulses, the layout's time windows split into leads. Leads are NaN outside the windows the layout shows
    them in. An image that cannot be digitised is skipped, counted and reported; the others are written."""
    from ecgalign.render.digitize import DigitizeError, digitize_file
    from ecgalign.render.layout import check_layout

    with user_errors():
        check_layout(layout)
        if gain.strip().lower() == "auto":
            gain_mm = None
        else:
            try:
                gain_mm = float(gain)
            except ValueError:
                fail(f"--gain: expected mm/mV (e.g. 10) or 'auto', got {gain!r}")
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
                    result = digitize_file(image, target, layout, fs=fs, seconds=seconds, speed=speed, gain=gain_mm)
                except DigitizeError as exc:
                    if single:
                        raise
                    skipped.append({"image": str(image), "reason": str(exc)})
                else:
                    done.append({"image": str(image), "record": str(target), **result.summary()})
                update(k + 1, len(files))
    summary = {"out": str(out), "records": len(done), "skipped": len(skipped), "skipped_images": skipped[:50],
               "layout": layout, "results": done}
    if json_out:
        print_json(summary)
        return
    for item in done:
        for note in item["notes"]:
            err.print(f"{item['image']}: {note}", soft_wrap=True)
    for item in skipped:
        err.print(f"skipped {item['reason']}", soft_wrap=True)
    where = done[0]["record"] + ".hea/.dat" if single else f"{len(done)} WFDB record(s) to {out}"
    err.print(f"wrote {where}{f'; skipped {len(skipped)} image(s)' if skipped else ''}", soft_wrap=True)
    if not done:
        raise typer.Exit(1)
