"""CQA (ESI section 3.1): knowledge-index build time, retrieval sanity and enrichment throughput. Prints JSON.

- build: the packaged corpus indexed with the packaged all-MiniLM-L6-v2 (seconds, chunks), then a rebuild with
  nothing changed;
- retrieval: for every corpus condition and every question template, the *unfiltered* top-2 for
  "How is {condition} reflected in a 12-lead ECG?" (and its rephrasings): the share whose first hit, or one of
  the two hits, belongs to that condition (enrichment itself filters by condition; this measures how well the
  embeddings separate the corpus), and the mean latency of an uncached query;
- enrich: records per second of ``enrich_store`` (extractive backend) on a synthetic store of ``--records``.

    python benchmarks/bench_cqa.py [--records 1000] [--out bench_cqa.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from ecgalign.synth.store import synthesize_store
from ecgalign.text.cqa.describe import PROMPT_TEMPLATES
from ecgalign.text.cqa.enrich import enrich_store
from ecgalign.text.cqa.index import KnowledgeIndex, build_index
from ecgalign.text.cqa.knowledge import packaged_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="synthetic records to enrich")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    corpus = packaged_corpus()
    result: dict = {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "conditions": len(corpus)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        first = build_index(tmp / "kb")
        result["build"] = {"chunks": first.chunks, "seconds": round(time.perf_counter() - t0, 2)}
        again = build_index(tmp / "kb")
        result["rebuild_unchanged"] = {"embedded": again.added, "seconds": again.seconds}
        index = KnowledgeIndex(tmp / "kb")
        per_template = []
        latencies = []
        for template in PROMPT_TEMPLATES:
            top1 = top2 = 0
            for cond in corpus.conditions.values():
                question = template.format(condition=cond.name)
                t = time.perf_counter()
                hits = index.query(question, 2)
                latencies.append(time.perf_counter() - t)
                top1 += hits[0].condition == cond.id
                top2 += any(h.condition == cond.id for h in hits)
            per_template.append({"template": template, "top1": round(top1 / len(corpus), 3),
                                 "top2": round(top2 / len(corpus), 3)})
        result["retrieval_unfiltered"] = per_template
        result["query_ms_mean"] = round(1000 * sum(latencies) / len(latencies), 2)
        synthesize_store(tmp / "synth", args.records, seed=0, fs=100.0, seconds=2.0)
        t = time.perf_counter()
        report = enrich_store(tmp / "synth", tmp / "out", index)
        seconds = time.perf_counter() - t
        result["enrich"] = {"records": report.records, "described": report.described,
                            "unique_queries": report.unique_queries, "seconds": round(seconds, 2),
                            "records_per_s": round(report.records / seconds, 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
