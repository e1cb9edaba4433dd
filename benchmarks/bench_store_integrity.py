"""Cost of store integrity (issue 11): sha256 while writing shards, the header+size check on open, and the full
re-hash of `ecgalign data verify`. Synthetic int16 records (12 x 1000, PTB-XL at 100 Hz), so it runs anywhere.
Prints JSON.

    python benchmarks/bench_store_integrity.py [--records 20000] [--shard-records 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgalign.data.labels import FixedScheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import ECGStore, StoreSpec, StoreWriter
from ecgalign.data.verify import verify_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--shard-records", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal((12, 1000)) * 0.5).astype(np.float32)
    scheme = FixedScheme("toy", {"rhythm": ["SR"]})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "store"
        t0 = time.perf_counter()
        writer = StoreWriter(out, StoreSpec(100.0, 1000, LEADS_12, shard_records=args.shard_records), scheme)
        for i in range(args.records):
            writer.add(ECGRecord(signal, 100.0, LEADS_12, f"r{i}", "toy", codes=("SR",), code_system="toy"), i + 1)
        writer.close()
        write_s = time.perf_counter() - t0
        shard_bytes = sum(p.stat().st_size for p in (out / "signals").glob("*.npy"))
        t0 = time.perf_counter()
        hashlib.sha256(np.zeros(shard_bytes, np.uint8)).hexdigest()  # what hashing the shards alone costs
        hash_s = time.perf_counter() - t0
        opens = []
        for _ in range(5):
            t0 = time.perf_counter()
            ECGStore(out)
            opens.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = verify_store(out)
        verify_s = time.perf_counter() - t0
    print(json.dumps({
        "records": args.records, "shards": -(-args.records // args.shard_records), "shard_mb": round(shard_bytes / 1e6, 1),
        "write_s": round(write_s, 3), "sha256_of_shard_bytes_s": round(hash_s, 3),
        "hashing_share_of_write": round(hash_s / write_s, 3),
        "open_with_header_checks_ms": round(1000 * min(opens), 2),
        "verify_s": round(verify_s, 3), "verify_mb_per_s": round(shard_bytes / 1e6 / verify_s, 1),
        "verify_ok": result["ok"], "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
