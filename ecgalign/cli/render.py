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
    augment: str = typer.Option("none", help="none, light or heavy."),
    dpi: float = typer.Option(200.0, help="US Letter landscape at this resolution (200 -> 2200 x 1700 px)."),
    speed: float = typer.Option(25.0, help="Paper speed, mm/s (25 or 50)."),
    gain: float = typer.Option(10.0, help="Gain, mm/mV (5, 10 or 20)."),
    grid: str = typer.Option("red", help="Grid colours: red, pink, blue, green, bw, or none."),
    limit: Optional[int] = typer.Option(None, min=1, help="Render only the first N records."),
    seed: int = typer.Option(0, help="Image k uses seed + k (augmentations)."),
    batch_size: int = typer.Option(8, min=1, help="Images rendered together."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Layout of a raw dataset folder (default: detected)."),
    source_fs: Optional[int] = typer.Option(None, "--source-fs", help="Which recorded rate to read where a dataset ships several (PTB-XL: 100 or 500)."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cpu)."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Render printouts of every record (or --limit), skipping, counting and listing unreadable ones."""
    from ecgalign.data.readers.base import Skipped
    from ecgalign.data.store import ECGStore, is_store
    from ecgalign.render import RenderConfig
    from ecgalign.render.io import render_records

    skipped: list[Skipped] = []
    with user_errors():
        config = RenderConfig.letter(dpi, layout=layout, speed=speed, gain=gain, grid=grid)
        if is_store(data):
            store = ECGStore(data)
            pre = store.preprocess or {}
            if store.encoding != "int16" or pre.get("normalize", "none") != "none":
                fail(f"{data}: render needs signals in millivolts; this store is {pre.get('normalize')}-normalised "
                     f"({store.encoding}); render the raw dataset folder or a raw-preset store instead")
            total = len(store) if limit is None else min(limit, len(store))
            records = (store.record(i) for i in range(total))
        else:
            from ecgalign.cli.data import _reader_kwargs
            from ecgalign.data.readers import open_dataset

            reader = open_dataset(data, fmt, **_reader_kwargs(fmt, data, source_fs))
            total = len(reader) if limit is None else min(limit, len(reader))
            records = reader.iter_records(on_skip=skipped.append)
        written = 0
        with progress_bar("render", enabled=not json_out) as update:
            for _ in render_records(records, out, config=config, augment=augment, seed=seed, batch_size=batch_size,
                                    limit=limit, device=device):
                written += 1
                update(written + len(skipped), total)
    summary = {"out": str(out), "images": written, "skipped": len(skipped),
               "skipped_records": [s.as_dict() for s in skipped[:50]], "layout": layout, "augment": augment}
    if json_out:
        print_json(summary)
    else:
        err.print(f"wrote {written} printouts (PNG + JSON ground truth) to {out}"
                  f"{f'; skipped {len(skipped)} unreadable record(s)' if skipped else ''}", soft_wrap=True)
