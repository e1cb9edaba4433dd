"""``ecgalign render``: clinical ECG printouts (PNG) with a JSON sidecar of exact ground truth per image."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, fail, print_json, progress_bar, user_errors


def render(
    data: Path = typer.Option(..., "--data", help="A store in millivolts or a raw dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for NAME.png + NAME.json."),
    layout: str = typer.Option("3x4+II", help="3x4+II (default), 3x4, 6x2 or 12x1."),
    augment: str = typer.Option("none", help="none, light, heavy or wild (every scanner/photo artefact)."),
    dpi: float = typer.Option(200.0, help="US Letter landscape at this resolution (200 -> 2200 x 1700 px)."),
    speed: float = typer.Option(25.0, help="Paper speed, mm/s (25 or 50)."),
    gain: float = typer.Option(10.0, help="Gain, mm/mV (5, 10 or 20)."),
    grid: str = typer.Option("red", help="Grid colours: red, pink, blue, green, bw, or none."),
    limit: Optional[int] = typer.Option(None, min=1, help="Render only the first N records (of those chosen)."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated record ids to render (e.g. 1,2,17)."),
    record_list: Optional[Path] = typer.Option(None, "--records", help="A text file of record ids, one a line."),
    workers: int = typer.Option(1, min=1, help="Processes rendering, encoding and writing in parallel."),
    threads: int = typer.Option(1, min=1, help="Torch threads per process (1: no oversubscription)."),
    seed: int = typer.Option(0, help="Image k uses seed + k (augmentations)."),
    batch_size: int = typer.Option(8, min=1, help="Images rendered together."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Layout of a raw dataset folder (default: detected)."),
    source_fs: Optional[int] = typer.Option(None, "--source-fs", help="Which recorded rate to read where a dataset ships several (PTB-XL: 100 or 500)."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cpu)."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Render printouts of every record (or --ids / --records, and --limit) to NAME_<rate>hz.png + .json,
    skipping, counting and listing unreadable records and ids not found."""
    from ecgalign.data.readers.base import Skipped
    from ecgalign.data.store import ECGStore, is_store
    from ecgalign.render import RenderConfig
    from ecgalign.render.io import render_records

    import torch

    skipped: list[Skipped] = []
    with user_errors():
        torch.set_num_threads(threads)  # deliberate: default 2+ threads on a busy machine cost 2-30x per image
        config = RenderConfig.letter(dpi, layout=layout, speed=speed, gain=gain, grid=grid)
        wanted = _wanted_ids(ids, record_list)
        if is_store(data):
            store = ECGStore(data)
            pre = store.preprocess or {}
            if store.encoding != "int16" or pre.get("normalize", "none") != "none":
                fail(f"{data}: render needs signals in millivolts; this store is {pre.get('normalize')}-normalised "
                     f"({store.encoding}); render the raw dataset folder or a raw-preset store instead")
            total = len(store) if limit is None or wanted else min(limit, len(store))
            records = (store.record(i) for i in range(total))
        else:
            from ecgalign.cli.data import _reader_kwargs
            from ecgalign.data.readers import open_dataset

            reader = open_dataset(data, fmt, **_reader_kwargs(fmt, data, source_fs))
            total = len(reader) if limit is None or wanted else min(limit, len(reader))
            records = reader.iter_records(on_skip=skipped.append)
        found: set[str] = set()
        if wanted:
            records = _chosen(records, wanted, found)
            total = len(wanted) if limit is None else min(limit, len(wanted))
        written = 0
        with progress_bar("render", enabled=not json_out) as update:
            for _ in render_records(records, out, config=config, augment=augment, seed=seed, batch_size=batch_size,
                                    limit=limit, device=device, workers=workers, threads=threads):
                written += 1
                update(written + len(skipped), total)
    missing = sorted(wanted - found) if wanted and (limit is None or written < limit) else []
    summary = {"out": str(out), "images": written, "skipped": len(skipped),
               "skipped_records": [s.as_dict() for s in skipped[:50]], "ids_not_found": missing[:50],
               "layout": layout, "augment": augment}
    if json_out:
        print_json(summary)
    else:
        err.print(f"wrote {written} printouts (PNG + JSON ground truth) to {out}"
                  f"{f'; skipped {len(skipped)} unreadable record(s)' if skipped else ''}"
                  f"{f'; {len(missing)} id(s) not found: ' + ', '.join(missing[:10]) if missing else ''}", soft_wrap=True)
    if missing:
        raise typer.Exit(3)


def _wanted_ids(ids: Optional[str], record_list: Optional[Path]) -> set[str]:
    """Record ids chosen with --ids and/or --records (empty: all records)."""
    wanted = {x.strip() for x in (ids or "").split(",") if x.strip()}
    if record_list is not None:
        if not record_list.is_file():
            fail(f"--records {record_list}: no such file (one record id per line)")
        wanted |= {line.strip() for line in record_list.read_text().splitlines() if line.strip()}
        if not wanted:
            fail(f"--records {record_list}: the file lists no record ids")
    return wanted


def _chosen(records, wanted: set[str], found: set[str]):
    """The records whose id is wanted (stops once all are found)."""
    for rec in records:
        if str(rec.record_id) in wanted:
            found.add(str(rec.record_id))
            yield rec
            if found == wanted:
                return
