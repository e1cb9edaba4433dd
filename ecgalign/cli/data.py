"""``ecgalign data {download,convert,verify,info,synth,synth-echo,refiner-fit,lead-snr,realism}``."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Optional

import typer

from ecgalign.cli._common import fail, print_json, progress_bar, user_errors
from ecgalign.cli.echo import synth_echo_cmd

app = typer.Typer(help="Datasets: download, convert to a store, inspect, synthesize.", no_args_is_help=True)
app.command("synth-echo")(synth_echo_cmd)

FormatOpt = typer.Option(None, "--format", "-f", help="Dataset layout (default: detected). See `ecgalign data formats`.")
SourceFsOpt = typer.Option(None, "--source-fs", help="Which recorded rate to read where a dataset ships several (PTB-XL: 100 or 500).")


def _reader_kwargs(fmt: str | None, path: Path, source_fs: int | None) -> dict[str, Any]:
    """Options for the reader of ``path``; --source-fs only goes to readers that take an ``fs`` argument."""
    if source_fs is None:
        return {}
    from ecgalign.data.readers import detect_format, get_reader

    cls = get_reader(fmt or detect_format(path))
    if "fs" not in inspect.signature(cls.__init__).parameters:
        fail(f"--source-fs does not apply to the {cls.name} layout (it ships one sampling rate)")
    return {"fs": source_fs}


@app.command("formats")
def formats() -> None:
    """List the dataset layouts ecgalign reads."""
    from ecgalign.data.readers import get_reader, list_readers

    for name in list_readers():
        cls = get_reader(name)
        typer.echo(f"{name:14s} {cls.url or ''}\n{'':14s} {cls.citation.splitlines()[0] if cls.citation else ''}")


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="A raw dataset folder or a converted store."),
    fmt: Optional[str] = FormatOpt,
    source_fs: Optional[int] = SourceFsOpt,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Records, sampling rates, leads, label counts per label set and skipped records of a dataset or store."""
    from ecgalign.data.summary import dataset_info

    with user_errors():
        summary = dataset_info(path, fmt, **_reader_kwargs(fmt, path, source_fs))
    if json_out:
        print_json(summary)
        return
    _print_info(summary)


def _print_info(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{summary['dataset']}[/] ({summary['kind']}) {summary['path']}")
    console.print(f"records: {summary['records']}   sampling rates: {summary['sampling_rates']} Hz   "
                  f"leads: {' '.join(summary['leads'])}   skipped: {summary['skipped']}")
    for key in ("patients", "sex", "age", "folds"):
        if key in summary:
            console.print(f"{key}: {summary[key]}")
    for name, counts in summary["label_counts"].items():
        table = Table(title=f"{name} ({len(counts)} classes, {summary['records_without_label'].get(name, 0)} records without a label)")
        table.add_column("class")
        table.add_column("records", justify="right")
        for cls, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            table.add_row(cls, str(n))
        console.print(table)
    for s in summary.get("skipped_records", [])[:10]:
        console.print(f"[yellow]skipped[/] {escape(str(s['record_id']))}: {escape(s['problem'])} ({escape(s['source'])})",
                      highlight=False)
    for s in summary.get("unreadable_files", [])[:10]:
        console.print(f"unreadable {s['record_id']}: {s['problem']} ({s['source']})", highlight=False, markup=False)


@app.command("verify")
def verify_cmd(
    store: Path = typer.Argument(..., help="A converted store folder."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Re-hash every file of a store against the checksums written at creation (exit 1 if any differs)."""
    from ecgalign.data.verify import verify_store

    with user_errors():
        result = verify_store(store)
    if json_out:
        print_json(result)
    else:
        typer.echo(f"{result['store']}: {result['records']} records, {result['files_checked']} files, "
                   f"checksums {result['checksums']}: {'ok' if result['ok'] else 'DAMAGED'}")
        for p in result["problems"]:
            typer.echo(f"  {p['file']}: {p['problem']}")
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("convert")
def convert_cmd(
    source: Path = typer.Argument(..., help="Raw dataset folder (PTB-XL, challenge, CPSC2018, CODE, MIMIC-IV-ECG)."),
    out: Path = typer.Argument(..., help="Output store folder."),
    fmt: Optional[str] = FormatOpt,
    source_fs: Optional[int] = SourceFsOpt,
    preset: str = typer.Option("raw", help="Preprocessing preset: raw (mV, resample + crop) or baselines (100 Hz, 0.5-40 Hz band-pass, z-score)."),
    fs: Optional[float] = typer.Option(None, help="Target sampling rate (Hz); default: --source-fs when given, else the preset's."),
    seconds: Optional[float] = typer.Option(None, help="Target length (s); longer records are cropped, shorter padded."),
    crop: Optional[str] = typer.Option(None, help="Where to crop long records: start, center or random."),
    normalize: Optional[str] = typer.Option(None, help="Per-lead normalisation: zscore, minmax, robust or none."),
    encoding: Optional[str] = typer.Option(None, help="int16 (mV, 1 uV steps) or float16/float32; default by normalisation."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    limit: Optional[int] = typer.Option(None, min=1, help="Convert only the first N records."),
    resume: bool = typer.Option(False, help="Continue an interrupted conversion in OUT."),
    overwrite: bool = typer.Option(False, help="Replace an existing store in OUT."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Convert a dataset once into a sharded store (skipping, counting and listing bad records)."""
    from ecgalign.data.convert import convert
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.data.readers import open_dataset

    if fs is None and source_fs is not None:
        fs = float(source_fs)  # reading one recorded rate means keeping it unless --fs says otherwise
    overrides = {k: v for k, v in {"fs": fs, "seconds": seconds, "crop": crop, "normalize": normalize}.items() if v is not None}
    with user_errors():
        pre = dataclasses.replace(Preprocess.preset(preset), **overrides)
        reader = open_dataset(source, fmt, **_reader_kwargs(fmt, source, source_fs))
        with progress_bar(f"convert {reader.name}", enabled=not json_out) as update:
            report = convert(reader, out, pre, encoding=encoding, workers=workers, resume=resume,
                             overwrite=overwrite, limit=limit, progress=update)
    _report(report.as_dict(), json_out)


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output store folder."),
    n: int = typer.Option(1000, "--n", min=1, help="Number of records."),
    seed: int = typer.Option(0, help="Seed; the output is a deterministic function of (seed, n, options)."),
    fs: float = typer.Option(500.0, help="Sampling rate (Hz): 500 or 100 are the usual choices."),
    seconds: float = typer.Option(10.0, help="Record length (s)."),
    preset: Optional[str] = typer.Option(None, help="Store the records preprocessed by this preset (e.g. baselines: 100 Hz, 0.5-40 Hz, z-score, the default encoder input); default: raw mV at --fs."),
    workers: int = typer.Option(1, min=1, help="Worker processes (output does not depend on it)."),
    refiner: Optional[Path] = typer.Option(None, help="Refine every record with this refiner (a folder written by `ecgalign data refiner-fit`)."),
    prevalence: Optional[Path] = typer.Option(None, help="Code prevalences: a file written by `ecgalign data prevalence-fit`, or a JSON object code -> probability."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in OUT."),
    overwrite: bool = typer.Option(False, help="Replace an existing store in OUT."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Synthesize physiological 12-lead ECGs with SCP labels and free-text reports into a store."""
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.synth.generate import SynthConfig
    from ecgalign.synth.prevalence import read_prevalence
    from ecgalign.synth.store import synthesize_store

    with user_errors(), progress_bar("synthesize", enabled=not json_out) as update:
        pre = None if preset is None else Preprocess.preset(preset)
        config = SynthConfig(prevalence=read_prevalence(prevalence)) if prevalence is not None else None
        report = synthesize_store(out, n, seed=seed, fs=fs, seconds=seconds, preprocess=pre, workers=workers,
                                  resume=resume, overwrite=overwrite, progress=update, refiner=refiner,
                                  config=config)
    _report(report.as_dict(), json_out)


@app.command("prevalence-fit")
def prevalence_fit_cmd(
    real: str = typer.Argument(..., help="Real records whose code rates to match: a dataset folder (e.g. ../shared/data/ptbxl-500) or a store."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the fit here (JSON; `ecgalign data synth --prevalence` reads it)."),
    n: int = typer.Option(50_000, "--n", min=100, help="Generated records counted per round (codes only, ~4,000/s)."),
    rounds: int = typer.Option(6, min=1, help="Rounds of the fixed-point iteration."),
    seed: int = typer.Option(0, help="Seed of the generated records counted."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N real records."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fit the generator's code prevalences so that generated records carry each SCP code as often as REAL does."""
    from ecgalign.synth.prevalence import fit_from_source, write_prevalence

    with user_errors():
        fit = fit_from_source(real, n=n, rounds=rounds, seed=seed, limit=limit)
        if out is not None:
            write_prevalence(out, fit)
    if json_out:
        print_json(fit)
        return
    typer.echo(f"{fit['source']['records']} real records ({fit['source']['skipped']} skipped); "
               f"largest miss after {rounds} rounds: {fit['rounds'][-1]['max_abs']:.4f} "
               f"({100 * fit['rounds'][-1]['max_rel']:.1f} %)")
    for code, p in fit["prevalence"].items():
        if code in fit["target"]:
            typer.echo(f"{code:6s} real {fit['target'][code]:.4f}  generated {fit['observed'][code]:.4f}  "
                       f"prevalence {p:.5f}")
    typer.echo(f"NORM   real {fit['source']['norm_rate']:.4f}  generated {fit['observed']['NORM']:.4f}  (not fitted)")
    if fit["absent"]:
        typer.echo(f"absent from the real records (setting kept): {', '.join(fit['absent'])}")
    if out is not None:
        typer.echo(f"written to {out}")


@app.command("refiner-fit")
def refiner_fit_cmd(
    real: str = typer.Option(..., "--real", help="Unlabeled real records: a dataset folder (e.g. ../shared/data/ptbxl-unlabeled) or a store. Keep the records you will evaluate on out of it."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (refiner.safetensors + refiner.json)."),
    n: int = typer.Option(3000, "--n", min=8, help="Generated records to refine in training."),
    seed: int = typer.Option(7, help="Seed of the generated training records (use another seed than the records you evaluate)."),
    steps: int = typer.Option(800, min=1, help="Training steps."),
    batch_size: int = typer.Option(32, min=2, help="Records per step and side."),
    identity: float = typer.Option(6.0, min=0.0, help="Weight of staying close to the generated record."),
    train_seed: int = typer.Option(0, help="Seed of weights and batches."),
    limit: Optional[int] = typer.Option(None, min=8, help="Use only the first N real records."),
    workers: int = typer.Option(1, min=1, help="Worker processes generating the training records."),
    threads: int = typer.Option(2, min=1, help="Torch threads."),
    overwrite: bool = typer.Option(False, help="Replace a refiner already in OUT."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Train a refiner that makes generated ECGs harder to tell from real ones, on unlabeled real records."""
    import torch

    from ecgalign.synth.realism import load_sample
    from ecgalign.synth.refine import RefinerConfig, fit_refiner, save_refiner, synthetic_inputs

    with user_errors():
        if (out / "refiner.json").exists() and not overwrite:
            raise ValueError(f"{out}: holds a refiner already; pass --overwrite to replace it")
        torch.set_num_threads(threads)
        config = RefinerConfig(steps=steps, batch_size=batch_size, identity=identity, seed=train_seed)
        sample = load_sample(real, limit=limit)
        synth = synthetic_inputs(n, seed, workers=workers)
        log = None if json_out else (lambda row: typer.echo(" ".join(f"{k} {v}" for k, v in row.items())))
        fit = fit_refiner(synth, sample.x, config, progress=log, log_every=max(1, steps // 20))
        info = {"real": real, "real_records": len(sample), "real_skipped": len(sample.skipped),
                "synthetic": {"n": n, "seed": seed}}
        save_refiner(out, fit, info)
    result = {"out": str(out), "seconds": round(fit.seconds, 1), "real_records": len(sample),
              "real_skipped": len(sample.skipped), "synthetic_records": n, "last": fit.history[-1]}
    if json_out:
        print_json(result)
    else:
        typer.echo(f"wrote {out} ({fit.seconds:.0f} s, {len(sample)} real records, {n} generated)")


def _report(report: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(report)
        return
    typer.echo(f"wrote {report['records']} records to {report['out']} ({report['skipped']} skipped"
               f"{', see skipped.csv' if report['skipped'] else ''})")
    unreadable = report.get("unreadable_files", [])
    if unreadable:
        typer.echo(f"warning: {len(unreadable)} source file(s) could not be read; their records are in no count:", err=True)
        for f in unreadable:
            typer.echo(f"  {f['source']}: {f['problem']}", err=True)


@app.command("lead-snr")
def lead_snr_cmd(
    path: Path = typer.Argument(..., help="A raw dataset folder or a store (mV, not normalised)."),
    fmt: Optional[str] = FormatOpt,
    source_fs: Optional[int] = SourceFsOpt,
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N records."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Mean SNR (dB) of Einthoven/Goldberger-derived vs recorded III, aVR, aVL, aVF (ECG-Scan, Table 1)."""
    from ecgalign.data.summary import dataset_lead_snr

    with user_errors():
        result = dataset_lead_snr(path, fmt, limit, **_reader_kwargs(fmt, path, source_fs))
    if json_out:
        print_json(result)
        return
    typer.echo(f"{result['records']} records ({result['skipped']} skipped)")
    typer.echo(f"{'lead':6s} {'mean dB':>8s} {'median dB':>10s}")
    for lead, s in result["leads"].items():
        capped = f"  ({s['capped']} exact matches capped at 120 dB)" if s["capped"] else ""
        typer.echo(f"{lead:6s} {s['mean_db']:8.2f} {s['median_db']:10.2f}{capped}")


@app.command("realism")
def realism_cmd(
    synth: str = typer.Argument(..., help="Synthetic records: a store, a dataset folder, or synth:N[:SEED] (generated now)."),
    real: str = typer.Argument(..., help="Real records: a dataset folder (e.g. ../shared/data/ptbxl-500) or a store."),
    limit: Optional[int] = typer.Option(None, min=2, help="Use only the first N records of each side."),
    folds: int = typer.Option(5, min=2, help="Patient-grouped cross-validation folds of the domain classifier."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML page with plots here."),
) -> None:
    """How far synthetic ECGs are from real ones: domain-classifier AUROC, signs, distributions, label fidelity."""
    from ecgalign.synth.realism import compare, load_sample, write_html
    from ecgalign.synth.realism.measure import likelihood_text

    with user_errors():
        result = compare(load_sample(synth, limit=limit), load_sample(real, limit=limit), folds=folds)
        if html_out is not None:
            write_html(result, html_out)
    s = result.summary
    if json_out:
        print_json(s)
        return
    typer.echo(f"synthetic {s['synthetic']['records']} records, real {s['real']['records']} records")
    typer.echo("domain AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in s["domain_auroc"].items()))
    for g in s["signs"]:
        typer.echo(f"{g['sign']}: synthetic {g['synthetic']:g} real {g['real']:g} (ratio {g['ratio']:g})")
    for cls, v in s["class_profiles"].items():
        d = v["largest_differences"][0]
        typer.echo(f"class profile {cls}: correlation {v['profile_correlation']:.2f} with real (largest "
                   f"difference: {d['feature']}, effect {d['synthetic_effect']:+.2f} vs {d['real_effect']:+.2f})")
    fid_s, fid_r = s["label_fidelity"]["synthetic"], s["label_fidelity"]["real"]
    for code in fid_s or fid_r:
        sides = []
        for side, fid in (("synthetic", fid_s), ("real", fid_r)):
            v = fid.get(code) or {}
            if v.get("meets") is not None:
                extra = likelihood_text(v.get("by_likelihood") or {})
                sides.append(f"{side} {v['meets']:.2f} of {v['judged']}" + (f" ({extra})" if extra else ""))
        if sides:
            criterion = (fid_s.get(code) or fid_r.get(code))["criterion"]
            typer.echo(f"label fidelity {code} ({criterion}): " + ", ".join(sides))


@app.command("download")
def download_cmd(
    name: Optional[str] = typer.Argument(None, help="Dataset name (see --list)."),
    to: Optional[Path] = typer.Option(None, "--to", help="Target folder."),
    include: Optional[list[str]] = typer.Option(None, "--include", help="Only files matching this glob (repeatable), e.g. 'records100/*'."),
    mirror: Optional[str] = typer.Option(None, help="Base URL replacing the official one (or set ECGALIGN_DOWNLOAD_MIRROR)."),
    workers: int = typer.Option(4, min=1, help="Parallel downloads."),
    list_: bool = typer.Option(False, "--list", help="List the downloadable datasets."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Download an open dataset (PhysioNet / Zenodo) with resume and checksum verification."""
    from ecgalign.data import download as dl

    if list_ or name is None:
        entries = dl.list_datasets()
        if json_out:
            print_json(entries)
        else:
            for e in entries:
                typer.echo(f"{e['name']:16s} {e.get('size', ''):>10s}  {e['description']}")
        return
    if to is None:
        fail("--to DIR is required")
    with user_errors():
        try:
            with progress_bar(f"download {name}", enabled=not json_out) as update:
                report = dl.download(name, to, include=include or None, mirror=mirror, workers=workers, progress=update)
        except dl.DownloadError as exc:  # the other files were downloaded: report them, then fail in one line
            report = exc.report
    if json_out:
        print_json(report.as_dict())
    else:
        typer.echo(str(report))
    if report.failed:
        path, reason = next(iter(report.failed.items()))
        fail(f"{len(report.failed)} of {report.files} files of {report.dataset} failed, e.g. {path}: {reason} "
             f"(all are listed in {Path(to) / dl.RECORD_FILE})", code=1)
