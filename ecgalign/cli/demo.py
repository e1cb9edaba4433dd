"""``ecgalign demo``: the main job of ``make demo`` on the embedded default (grows with the toolkit)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, print_json, user_errors


def _default_ptbxl() -> Path | None:
    here = Path.cwd()
    for root in (here, *here.parents):
        candidate = root.parent / "shared" / "data" / "ptbxl-500"
        if candidate.is_dir():
            return candidate
    return None


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output folder."),
    n: int = typer.Option(2000, "--n", min=10, help="Synthetic records to generate."),
    ptbxl: Optional[Path] = typer.Option(None, help="A PTB-XL folder to convert too (default: ../shared/data/ptbxl-500 when present)."),
    workers: int = typer.Option(2, min=1, help="Worker processes."),
    json_out: bool = typer.Option(False, "--json", help="Print the summaries as one JSON object."),
) -> None:
    """Synthesize a dataset, convert PTB-XL when available, and print their summaries."""
    from ecgalign.cli.data import _print_info
    from ecgalign.data.convert import convert
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.data.readers import open_dataset
    from ecgalign.data.summary import dataset_info, dataset_lead_snr
    from ecgalign.synth.store import synthesize_store

    results = {}
    with user_errors():
        synth_out = out / "synthetic-100hz"
        err.print(f"[bold]1.[/] synthesizing {n} records into {synth_out}")
        synthesize_store(synth_out, n, seed=0, fs=100.0, workers=workers, overwrite=True)
        results["synthetic"] = dataset_info(synth_out)
        ptbxl = ptbxl or _default_ptbxl()
        if ptbxl is not None:
            ptb_out = out / "ptbxl-100hz"
            err.print(f"[bold]2.[/] converting {ptbxl} into {ptb_out}")
            convert(open_dataset(ptbxl, "ptbxl", fs=100), ptb_out, Preprocess(fs=100.0, seconds=10.0),
                    workers=workers, overwrite=True)
            results["ptbxl"] = dataset_info(ptb_out)
            results["ptbxl_lead_snr"] = dataset_lead_snr(ptbxl, "ptbxl", fs=500)
        else:
            err.print("[bold]2.[/] no PTB-XL folder found (pass --ptbxl PATH); skipping the real-data part")
    if json_out:
        print_json(results)
        return
    for key in ("synthetic", "ptbxl"):
        if key in results:
            _print_info(results[key])
    if "ptbxl_lead_snr" in results:
        snr = results["ptbxl_lead_snr"]
        typer.echo(f"PTB-XL 500 Hz lead SNR (derived vs recorded, {snr['records']} records): "
                   + ", ".join(f"{k} {v['mean_db']:.1f} dB" for k, v in snr["leads"].items()))
