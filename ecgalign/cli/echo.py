"""``ecgalign echo {info,extract,score}`` and ``ecgalign data synth-echo`` (EEE's data side, seed 003 Sec. 3.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ecgalign.cli._common import print_json, progress_bar, user_errors

app = typer.Typer(help="Echo DICOMs: inspect, extract clips + ECG strips into a store, score against truth.",
                  no_args_is_help=True)


@app.command("info")
def info_cmd(
    path: Path = typer.Argument(..., help="A DICOM file, a folder of DICOMs or a MIMIC-IV-ECHO folder."),
    max_frames: int = typer.Option(120, min=1, help="Clips longer than this are excluded (EEE: 120)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Files, kept / excluded by reason, patients, studies, frame counts and sizes (headers only)."""
    from ecgalign.echo.info import echo_info

    with user_errors():
        summary = echo_info(path, max_frames)
    if json_out:
        print_json(summary)
        return
    typer.echo(f"{summary['path']}: {summary['files']} files, {summary['kept']} kept, {summary['excluded']} excluded")
    for reason, n in summary["excluded_by_reason"].items():
        typer.echo(f"  excluded {reason}: {n}")
    typer.echo(f"patients {summary['patients']}  studies {summary['studies']}  frames {summary['frames']}  "
               f"fps {summary['fps']}  sizes {summary['frame_sizes']}  {summary['bytes'] / 1e6:.1f} MB")


@app.command("extract")
def extract_cmd(
    dicoms: Path = typer.Argument(..., help="A folder of DICOMs or a MIMIC-IV-ECHO folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Output echo store folder."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    resume: bool = typer.Option(False, help="Continue an interrupted extraction in OUT."),
    overwrite: bool = typer.Option(False, help="Replace an existing store in OUT."),
    labels: Optional[Path] = typer.Option(None, help="Per-study label CSV (study_id + 0/1 columns); default: "
                                          "DICOMS/echo-labels.csv when present."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N files (sorted by path)."),
    strip_fs: float = typer.Option(250.0, help="Sampling rate of the extracted strip signals (Hz)."),
    echo_size: int = typer.Option(224, help="Echo frames are resized to SIZE x SIZE (EEE: 224)."),
    sweep_px_per_s: Optional[float] = typer.Option(None, help="Strip sweep speed in pixels per second; default: "
                                                   "the trace spans the clip (frames / fps)."),
    dask: Optional[str] = typer.Option(None, help="Run on Dask: 'local' (a LocalCluster) or a scheduler address "
                                       "(needs the `cluster` extra)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Extract echo clips (224x224 grey) and ECG strips from every DICOM, skipping and counting bad files."""
    from ecgalign.echo.extract import ExtractConfig
    from ecgalign.echo.pipeline import extract_dataset

    with user_errors(), progress_bar("extract", enabled=not json_out) as update:
        config = ExtractConfig(strip_fs=strip_fs, echo_size=echo_size, sweep_px_per_s=sweep_px_per_s)
        kwargs: dict[str, Any] = dict(workers=workers, resume=resume, overwrite=overwrite, labels=labels,
                                      limit=limit, progress=update)
        if dask is None:
            report = extract_dataset(dicoms, out, config, **kwargs)
        else:
            from ecgalign.echo.cluster import extract_on_dask

            report = extract_on_dask(dicoms, out, config, address=dask, n_workers=workers, **kwargs)
    if json_out:
        print_json(report)
        return
    typer.echo(f"kept {report['kept']} of {report['files']} files into {report['out']} "
               f"({report['files_per_second']} files/s this run)")
    for reason, n in report["skipped_by_reason"].items():
        typer.echo(f"  skipped {reason}: {n}")


@app.command("score")
def score_cmd(
    store: Path = typer.Argument(..., help="An echo store made by `ecgalign echo extract`."),
    truth: Path = typer.Argument(..., help="The folder `ecgalign data synth-echo` wrote (holds synth-truth.csv)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Strip recovery (median Pearson r), planted defects rejected and clean files kept, against synthetic truth."""
    from ecgalign.echo.validate import score_store

    with user_errors():
        result = score_store(store, truth)
    result.pop("rows")
    if json_out:
        print_json(result)
        return
    typer.echo(f"strip r median {result['strip_r_median']} (5th pct {result['strip_r_p05']}); planted defects "
               f"rejected {result['planted_rejected']}/{result['planted']}; clean kept "
               f"{result['clean_kept']}/{result['clean']}; stills excluded {result['stills_excluded']}/"
               f"{result['stills']}")


def synth_echo_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (MIMIC-IV-ECHO layout)."),
    n_patients: int = typer.Option(50, "--n-patients", min=1, help="Number of patients."),
    seed: int = typer.Option(0, help="Seed; the output is a deterministic function of (seed, options)."),
    rows: int = typer.Option(240, help="Frame height (pixels)."),
    cols: int = typer.Option(320, help="Frame width (pixels)."),
    compression: str = typer.Option("none", help="Pixel data: none (RGB) or jpeg (JPEG baseline, YBR_FULL_422)."),
    defect_fraction: float = typer.Option(0.2, help="Share of cine files with one planted strip defect."),
    ecg_link: Optional[float] = typer.Option(None, help="Share of patients whose ECG shows their echo phenotype's "
                                             "findings (0: ECG independent of it, 1: tied to it; default 0.5, "
                                             "docs/echo.md)."),
    views: int = typer.Option(2, min=1, help="Cine views per study."),
    max_frames: int = typer.Option(120, min=32, max=120, help="Longest cine loop (frames; the shortest is 32)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (output does not depend on it)."),
    overwrite: bool = typer.Option(False, help="Write into a non-empty OUT."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Synthesize echo DICOMs with a burned-in ECG strip, paired 12-lead ECGs, labels and ground truth."""
    from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo

    with user_errors(), progress_bar("synth-echo", enabled=not json_out) as update:
        config = EchoSynthConfig(rows=rows, cols=cols, compression=compression, defect_fraction=defect_fraction,
                                 views_per_study=views, frames=(32, max_frames),
                                 **({} if ecg_link is None else {"ecg_link": ecg_link}))
        summary = synthesize_echo(out, n_patients, seed=seed, config=config, overwrite=overwrite, workers=workers,
                                  progress=update)
    if json_out:
        print_json(summary)
        return
    typer.echo(f"wrote {summary['dicoms']} DICOMs ({summary['cine']} cine, {summary['stills']} stills) for "
               f"{summary['patients']} patients / {summary['studies']} studies to {summary['out']}; planted "
               f"defects {summary['defects']}")


@app.command("cir-labels")
def cir_labels_cmd(
    ecg_records: Path = typer.Argument(..., help="MIMIC-IV-ECG record_list.csv (subject_id, study_id, ecg_time)."),
    hosp: Path = typer.Argument(..., help="MIMIC-IV hosp/ folder with admissions.csv(.gz), diagnoses_icd.csv(.gz)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV: study_id, subject_id, one 0/1 column per CIR."),
    dxccsr: Optional[Path] = typer.Option(None, help="HCUP DXCCSR CSV for the full ICD-10 -> CIR map (default: "
                                          "the EEE paper's Table 2)."),
    before_hours: float = typer.Option(0.0, help="Link ECGs taken up to this many hours before admission."),
    after_hours: float = typer.Option(0.0, help="Link ECGs taken up to this many hours after discharge."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Structural-disease labels (CCSR CIR categories) per ECG from the hospital diagnoses (EEE Table 2)."""
    import pandas as pd

    from ecgalign.data.labels import ccsr
    from ecgalign.echo.store import atomic_write_text

    def table(name: str) -> Path:
        for candidate in (hosp / f"{name}.csv", hosp / f"{name}.csv.gz"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"{hosp}: no {name}.csv or {name}.csv.gz")

    with user_errors():
        mapping = ccsr.cir_map(ccsr.load_dxccsr(dxccsr)) if dxccsr else None
        labels = ccsr.link_diagnoses(ccsr.read_table(ecg_records), ccsr.read_table(table("diagnoses_icd")),
                                     ccsr.read_table(table("admissions")), mapping=mapping,
                                     before=pd.Timedelta(hours=before_hours), after=pd.Timedelta(hours=after_hours))
        atomic_write_text(out, labels.to_csv(index=False))
    classes = [c for c in labels.columns if c.startswith("CIR")]
    summary = {"out": str(out), "ecgs": len(labels), "linked": int((labels.n_admissions > 0).sum()),
               "classes": len(classes), "positives": {c: int(labels[c].sum()) for c in classes}}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"wrote {summary['ecgs']} ECGs ({summary['linked']} linked to an admission), "
                   f"{summary['classes']} CIR classes, to {out}")
