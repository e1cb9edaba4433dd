"""Data parallel on 2 CPU processes (gloo), launched the documented way, with torchrun."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from ecgalign.hub.io import load_weights


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pretrain_args(store, out, batch_size: int, *extra: str) -> list[str]:
    return ["-m", "ecgalign.cli.main", "pretrain", "--recipe", "clip", "--data", str(store), "--out", str(out),
            "--no-progress", "--max-steps", "3", "--batch-size", str(batch_size),
            "--set", "model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}", "--set", "data.num_workers=0",
            "--set", "train.accelerator=cpu", "--set", "optim.warmup_steps=1", "--set", "train.log_every=1",
            "--set", "train.checkpoint_every=1", "--set", "train.keep_checkpoints=3", *extra]


@pytest.mark.slow
def test_two_gloo_ranks_train_like_one_process_with_the_whole_batch(train_store, tmp_path):
    """2 ranks x 4 records == 1 process x 8 records: same batches, cross-rank negatives with gradient,
    averaged gradients, so the same weights after 3 steps (up to float summation order)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, *_pretrain_args(train_store, tmp_path / "one", 8)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()),
         *_pretrain_args(train_store, tmp_path / "two", 4, "--set", "train.devices=2", "--set", "train.strategy=ddp")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_weights(tmp_path / "one" / "model.safetensors")
    b = load_weights(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4, msg=key)
    after_one = load_weights(tmp_path / "one" / "checkpoints" / "step-00000001" / "model.safetensors")
    moved = [k for k in a if (after_one[k] - a[k]).abs().max() > 1e-4]
    assert len(moved) > len(a) // 2  # steps 2-3 changed most weights, so the comparison means something
