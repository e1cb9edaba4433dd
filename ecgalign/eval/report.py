"""``results.json`` + a self-contained ``report.html`` (inline CSS, figures as base64 PNG, no external
asset) for an evaluation run."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ecgalign.eval.protocols import get_protocol, list_protocols
from ecgalign.hub.io import atomic_write_text

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1em;margin-top:1.4em}table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:.85em}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0}.figs figcaption{font-size:.8em;color:#555}
code{background:#f4f4f4;padding:0 .3em}
"""


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) or v is None for v in value):
        return f"[{fmt(value[0], digits)}, {fmt(value[1], digits)}]"
    return html.escape(str(value))


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return '<p class="note">no rows</p>'
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure_block(figures: list[tuple[str, bytes]]) -> str:
    items = []
    for caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        items.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f'<div class="figs">{"".join(items)}</div>' if items else ""


def render(title: str, sections: list[tuple[str, str]], meta: dict[str, Any], preamble: str = "") -> str:
    """A whole page: title, ``preamble`` (HTML), a table of ``meta``, then each (heading, HTML) section."""
    meta_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in meta.items())
    meta_table = f"<table>{meta_rows}</table>" if meta_rows else ""
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{preamble}{meta_table}{body}"
            "</body></html>")


def write_outputs(out_dir: str | Path, results: dict[str, Any], report_html: str) -> dict[str, str]:
    """Atomically write ``results.json`` (strict JSON: a NaN anywhere is a bug and raises) and ``report.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "report": out / "report.html"}
    for key, text in (("results", json.dumps(results, indent=2, allow_nan=False)), ("report", report_html)):
        atomic_write_text(paths[key], text)
    return {k: str(v) for k, v in paths.items()}


ROLE = {"model": "pretrained (frozen)", "random_init": "random init (frozen)", "supervised": "supervised from scratch"}


def ci_text(ci: Any) -> Any:
    if isinstance(ci, dict):
        return None if ci.get("low") is None else [ci["low"], ci["high"]]
    return ci


def build_report(results: dict[str, Any], figures: list[tuple[str, str, bytes]]) -> str:
    """The HTML page of an ``ecgalign.eval.run.evaluate`` result."""
    sections, meta = _sections(results, figures)
    ds, ck = results.get("dataset", {}), results.get("checkpoint", {})
    return render(f"ecgalign evaluation: {ck.get('recipe')} on {ds.get('name')}", sections, meta)


def build_combined_report(title: str, parts: list[tuple[str, dict[str, Any], list[tuple[str, str, bytes]]]],
                          preamble: str = "") -> str:
    """One page for several evaluations (e.g. the demo's synthetic and PTB-XL runs), each under its heading."""
    sections: list[tuple[str, str]] = []
    for heading, results, figures in parts:
        inner, meta = _sections(results, figures)
        meta_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in meta.items())
        body = "".join(f"<h3>{html.escape(name)}</h3>{content}" for name, content in inner)
        sections.append((heading, f"<table>{meta_rows}</table>{body}"))
    return render(title, sections, {}, preamble)


def _sections(results: dict[str, Any], figures: list[tuple[str, str, bytes]]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """One section per registered protocol present in ``results``, in registration order."""
    by_section: dict[str, list[tuple[str, bytes]]] = {}
    for section, caption, png in figures:
        by_section.setdefault(section, []).append((caption, png))
    sections: list[tuple[str, str]] = []
    for name in list_protocols():
        protocol = get_protocol(name)
        block = results.get(protocol.key)
        if block is None:
            continue
        if isinstance(block, dict) and set(block) == {"skipped"}:
            sections.append((protocol.title, skipped_note(block["skipped"])))
        else:
            sections.append((protocol.title, protocol.section(block, by_section)))
    if by_section.get("embeddings"):
        sections.append(("Embeddings", figure_block(by_section["embeddings"])))
    ds, ck = results.get("dataset", {}), results.get("checkpoint", {})
    meta = {"dataset": f"{ds.get('name')} ({ds.get('path')})", "records": ds.get("embedded_records", ds.get("records")),
            "skipped": ds.get("skipped"), "recipe": ck.get("recipe"), "step": ck.get("step"),
            "encoder": (ck.get("encoder") or {}).get("name") if isinstance(ck.get("encoder"), dict) else ck.get("encoder"),
            "created": results.get("created"), "ecgalign": results.get("ecgalign_version"),
            "seconds": results.get("seconds")}
    return sections, meta


def skipped_note(reason: str) -> str:
    return f'<p class="note">skipped: {html.escape(reason)}</p>'
