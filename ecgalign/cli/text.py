"""``ecgalign text {kb build, kb query, enrich}``: the CQA knowledge index and enriched descriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ecgalign.cli._common import err, fail, print_json, progress_bar, user_errors

app = typer.Typer(help="Text: the CQA knowledge index and enriched ECG descriptions (extra: cqa).",
                  no_args_is_help=True)
kb_app = typer.Typer(help="Build and query a CQA knowledge index.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("build")
def kb_build(
    sources: Optional[list[Path]] = typer.Argument(None, help="Extra documents: .md/.txt/.pdf files or folders."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (created, or updated in place)."),
    builtin: bool = typer.Option(True, "--builtin/--no-builtin", help="Include the packaged ECG knowledge corpus."),
    model: Optional[str] = typer.Option(None, help="Local sentence-embedding model folder (default: packaged all-MiniLM-L6-v2)."),
    max_chars: int = typer.Option(1000, min=100, help="Largest document chunk (characters)."),
    json_out: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Chunk, embed and index the corpus and documents; a rebuild embeds only chunks that changed."""
    from ecgalign.text.cqa.index import build_index

    with user_errors(), progress_bar("embed", enabled=not json_out) as update:
        report = build_index(out, sources or [], builtin=builtin, model=model, max_chars=max_chars, progress=update)
    result = report.as_dict()
    if json_out:
        print_json(result)
        return
    typer.echo(f"{out}: {result['chunks']} chunks ({result['added']} embedded, {result['removed']} removed, "
               f"{result['unchanged']} unchanged) from {result['documents']} documents"
               f"{' + the packaged corpus' if builtin else ''}; {len(result['skipped'])} skipped")
    for s in result["skipped"]:
        err.print(f"[yellow]skipped[/] {s['file']}: {s['problem']}", highlight=False)


@kb_app.command("query")
def kb_query(
    kb: Path = typer.Argument(..., help="Index folder made by `ecgalign text kb build`."),
    question: str = typer.Argument(..., help="Question, e.g. 'How is atrial fibrillation reflected in a 12-lead ECG?'"),
    k: int = typer.Option(2, "-k", "--top-k", min=1, help="Number of passages."),
    condition: Optional[list[str]] = typer.Option(None, "--condition", help="Only passages of this condition id (repeatable)."),
    source: Optional[str] = typer.Option(None, "--source", help="Only passages of this exact source."),
    json_out: bool = typer.Option(False, "--json", help="Print the hits as JSON."),
) -> None:
    """Top-k passages for a question, optionally filtered by condition and source."""
    from ecgalign.text.cqa.index import KnowledgeIndex

    with user_errors():
        index = KnowledgeIndex(kb)
        unknown = sorted(set(condition or ()) - index.conditions())
        if unknown:
            fail(f"--condition {', '.join(unknown)}: no passage of this condition id in {kb} "
                 "(ids are the 'id' fields of the corpus, e.g. atrial-fibrillation)")
        hits = index.query(question, k, condition=condition or None, source=source)
    if json_out:
        print_json([h.as_dict() for h in hits])
        return
    for i, h in enumerate(hits, 1):
        typer.echo(f"[{i}] {h.score:.3f} {h.title} ({h.source})\n    {h.text}")


@app.command("enrich")
def enrich(
    store: Path = typer.Argument(..., help="Input store."),
    out: Path = typer.Option(..., "--out", "-o", help="Output store (the input plus a 'description' column)."),
    kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge index (default: the packaged corpus, indexed into OUT.kb beside OUT)."),
    backend: str = typer.Option("extractive", help="extractive (offline), hf (local model folder) or openai (HTTP endpoint)."),
    top_k: int = typer.Option(2, "--top-k", min=1, help="Passages per condition (ESI: 2)."),
    seed: int = typer.Option(0, help="Seed of the extractive composer's choices and of --template vary."),
    template: str = typer.Option("0", help="Question template index (0 = ESI's prompt) or 'vary' (one per condition combo)."),
    max_sentences: int = typer.Option(2, min=1, help="Extractive: waveform sentences per condition."),
    retrieval: bool = typer.Option(True, "--retrieval/--no-retrieval", help="--no-retrieval: knowledge base off "
                                   "(ESI A.2's 'no textbook'): demographics + condition names, no passages."),
    model: Optional[str] = typer.Option(None, help="hf: model folder; openai: model name."),
    endpoint: Optional[str] = typer.Option(None, help="openai: base URL, e.g. http://127.0.0.1:8000/v1."),
    timeout: float = typer.Option(60.0, help="openai: seconds per request."),
    retries: int = typer.Option(3, min=0, help="openai: retries per prompt."),
    max_new_tokens: int = typer.Option(256, min=1, help="hf/openai: longest description (tokens)."),
    cache: Optional[Path] = typer.Option(None, help="Prompt cache file (default: OUT/cqa_cache.jsonl)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in OUT."),
    overwrite: bool = typer.Option(False, help="Replace OUT."),
    json_out: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Write a copy of STORE with an enriched description per record (ESI's Cardio Query Assistant)."""
    from ecgalign.text.cqa.enrich import EnrichConfig, enrich_store
    from ecgalign.text.cqa.index import KnowledgeIndex, build_index

    if backend not in ("extractive", "hf", "openai"):
        fail(f"--backend {backend!r}: expected extractive, hf or openai")
    with user_errors():
        config = EnrichConfig(backend=backend, top_k=top_k, seed=seed, max_sentences=max_sentences,
                              retrieval=retrieval,
                              template=None if template == "vary" else _int(template, "--template"))
        gen = _backend(backend, model, endpoint, timeout, retries, max_new_tokens)
        if kb is None:
            kb = out.with_name(out.name + ".kb")
            build_index(kb)
        index = KnowledgeIndex(kb)
        with progress_bar("enrich", enabled=not json_out) as update:
            report = enrich_store(store, out, index, config=config, backend=gen, cache_path=cache, resume=resume,
                                  overwrite=overwrite, progress=update)
    result = report.as_dict()
    if json_out:
        print_json(result)
        return
    typer.echo(f"wrote {result['described']}/{result['records']} descriptions to {out} "
               f"({result['without_conditions']} records without a known condition, "
               f"{result['unique_queries']} retrieval queries, {result['unique_prompts']} unique prompts, "
               f"{result['cache_hits']} cache hits, {result['backend_errors']} backend errors"
               f"{', see enrich_errors.csv' if result['backend_errors'] else ''})")


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected an integer or 'vary'") from None


def _backend(name: str, model: str | None, endpoint: str | None, timeout: float, retries: int, max_new_tokens: int):
    from ecgalign.text.cqa.backends import HFBackend, OpenAIBackend

    if name == "hf":
        if not model:
            raise ValueError("--backend hf needs --model FOLDER (a local Hugging Face model)")
        return HFBackend(model, max_new_tokens=max_new_tokens)
    if name == "openai":
        if not endpoint or not model:
            raise ValueError("--backend openai needs --endpoint URL and --model NAME")
        return OpenAIBackend(endpoint, model, timeout=timeout, retries=retries, max_tokens=max_new_tokens)
    return None
