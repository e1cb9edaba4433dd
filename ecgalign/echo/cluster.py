"""Extraction over a Dask cluster (``distributed``, the ``cluster`` extra) for MIMIC-IV-ECHO scale (1.8 TB).

The scheduling is Dask's: each shard's files are submitted with ``client.map`` and gathered in file order; the
store is written by this (client) process exactly as in the local run, so resume, atomic shards and the skip
report are unchanged. Workers must see the DICOM folder at the same path (a shared file system). Use
``address="local"`` for a ``LocalCluster`` on this machine, or ``tcp://host:8786`` for a running scheduler
(e.g. one started by dask-jobqueue on SLURM).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ecgalign.echo.extract import Extracted, ExtractConfig, Rejected, extract_file
from ecgalign.echo.pipeline import extract_dataset


def _distributed() -> Any:
    try:  # optional dependency (the `cluster` extra), imported on first use
        import distributed
    except ImportError as exc:
        raise ImportError("running extraction on Dask needs distributed: pip install 'ecgalign[cluster]'") from exc
    return distributed


class DaskMap:
    """A map function over a Dask client: results come back in input order."""

    def __init__(self, client: Any):
        self.client = client

    def __call__(self, paths: list[str], config: ExtractConfig) -> Iterable[Extracted | Rejected]:
        futures = self.client.map(extract_file, paths, config=config, pure=False)
        for future in futures:
            yield future.result()


def extract_on_dask(root: str | Path, out: str | Path, config: ExtractConfig | None = None, *,
                    address: str = "local", n_workers: int = 2, **kwargs: Any) -> dict[str, Any]:
    """``extract_dataset`` with files processed on a Dask cluster (``address``: "local" or a scheduler)."""
    distributed = _distributed()
    kwargs.pop("workers", None)
    if address == "local":
        with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            return extract_dataset(root, out, config, map_fn=DaskMap(client), **kwargs)
    with distributed.Client(address) as client:
        return extract_dataset(root, out, config, map_fn=DaskMap(client), **kwargs)
