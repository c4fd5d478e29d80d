"""Training memory per rank with FSDP beside DDP, for an InternImage backbone, in one run.

    python tools/analysis_tools/benchmark_fsdp_memory.py [--arch xl] [--ranks 2] [--shape 64]
        [--batch 1] [--steps 2] [--with-cp] [--device cpu|cuda]

Starts ``torchrun --nproc_per_node RANKS`` twice, once with each rank holding the whole model
in DDP and once with the model sharded by FSDP the way ``tools/train.py --strategy fsdp`` does
(full sharding, one unit per InternImage block, ``use_orig_params``), and trains the backbone
(plus a linear head, AdamW) for a few steps on random images. Per rank it reports

* the bytes of training state the rank holds after the steps: its parameters, their gradients
  and the AdamW moments (for FSDP, its shards). This is exact and what the strategy changes:
  16 bytes per parameter under DDP, 16 / RANKS under FSDP;
* the peak memory during the steps: the highest resident-set size sampled every 5 ms on the
  CPU (it includes the activations, and the process's other memory), or
  ``max_memory_allocated`` on a GPU;
* the time per step.

The ratio column is FSDP / DDP. Use ``--arch h`` only where DDP fits: it needs 16 bytes per
parameter on every rank (about 17 GB per rank for the 1.08B-parameter H backbone).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODES = ('ddp', 'fsdp')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='FSDP vs DDP training memory per rank')
    parser.add_argument('--arch', default='t', help='InternImage size (t s b l xl h), default t')
    parser.add_argument('--channels', type=int, default=None,
                        help='override the stem width (a small model for a quick check)')
    parser.add_argument('--ranks', dest='nproc', type=int, default=2,
                        help='processes (torchrun --nproc_per_node), default 2')
    parser.add_argument('--shape', type=int, default=64, help='square input size, default 64')
    parser.add_argument('--batch', type=int, default=1, help='images per rank, default 1')
    parser.add_argument('--steps', type=int, default=2, help='training steps, default 2')
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--worker', choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nproc < 2:
        parser.error('--ranks must be at least 2 (FSDP shards over the ranks)')
    return args


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class _PeakRSS:
    """The highest resident-set size seen by a sampling thread while the block runs."""

    def __enter__(self) -> _PeakRSS:
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _state_bytes(model, optimizer) -> dict[str, int]:
    """Bytes of this rank's parameters, gradients and optimizer state (no double counting of
    tensors that share storage)."""
    seen: set[int] = set()

    def size(tensors) -> int:
        total = 0
        for t in tensors:
            if t is None or not hasattr(t, 'untyped_storage'):
                continue
            key = t.untyped_storage().data_ptr()
            if key in seen or t.numel() == 0:
                continue
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return total

    params = list(model.parameters())
    out = dict(params=size(params), grads=size(p.grad for p in params))
    out['optimizer'] = size(v for s in optimizer.state.values() for v in s.values()
                            if hasattr(v, 'numel') and v.numel() > 1)
    return out


def worker(args: argparse.Namespace) -> None:
    """One rank: build, wrap, train ``--steps`` steps, print one ``RESULT {json}`` line."""
    import torch
    import torch.distributed as dist
    from torch import nn

    import internimage_mm  # noqa: F401
    from internimage_mm.engine import internimage_auto_wrap_policy
    from internimage_mm.models import InternImage

    cuda = args.device == 'cuda'
    dist.init_process_group('nccl' if cuda else 'gloo')
    rank = dist.get_rank()
    device = torch.device('cuda', int(os.environ['LOCAL_RANK'])) if cuda else torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    extra = {} if args.channels is None else dict(channels=args.channels)
    backbone = InternImage(arch=args.arch, with_cp=args.with_cp, out_indices=(3, ), **extra)
    model = nn.ModuleDict(dict(backbone=backbone,
                               head=nn.Linear(backbone.stage_channels[-1], 10))).to(device)
    n_params = sum(p.numel() for p in model.parameters())

    class Net(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            feat = self.inner['backbone'](x)[-1]
            return self.inner['head'](feat.mean(dim=(2, 3)))

    net = Net(model)
    if args.worker == 'ddp':
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    else:
        from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
        net = FullyShardedDataParallel(net, device_id=device,
                                       sharding_strategy=ShardingStrategy.FULL_SHARD,
                                       auto_wrap_policy=internimage_auto_wrap_policy,
                                       use_orig_params=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, 3, args.shape, args.shape, device=device)
    y = torch.randint(0, 10, (args.batch, ), device=device)

    dist.barrier()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with _PeakRSS() as rss:
        for _ in range(args.steps):
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # keep the gradients to count them
    if cuda:
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated(device) if cuda else rss.peak
    result = dict(mode=args.worker, rank=rank, num_params=n_params, step_s=step_s, peak=peak,
                  **_state_bytes(net, optimizer))
    print('RESULT ' + json.dumps(result), flush=True)
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace, mode: str) -> list[dict]:
    """Run the ``mode`` workers under torchrun; their results, one dict per rank."""
    forwarded = ['--arch', args.arch, '--ranks', str(args.nproc), '--shape', str(args.shape),
                 '--batch', str(args.batch), '--steps', str(args.steps), '--device',
                 args.device, '--worker', mode]
    if args.channels is not None:
        forwarded += ['--channels', str(args.channels)]
    if args.with_cp:
        forwarded.append('--with-cp')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(args.nproc),
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()), __file__,
           *forwarded]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get('PYTHONPATH')])))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    results = [json.loads(line[len('RESULT '):]) for line in proc.stdout.splitlines()
               if line.startswith('RESULT ')]
    if proc.returncode != 0 or len(results) != args.nproc:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise SystemExit(f'{mode} run failed (exit code {proc.returncode}; an out-of-memory '
                         f'kill shows as -9):\n{tail}')
    return sorted(results, key=lambda r: r['rank'])


def _mb(n: float) -> str:
    return f'{n / 2**20:,.0f}'


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    runs = {mode: launch(args, mode) for mode in MODES}
    worst = {mode: max(runs[mode], key=lambda r: r['peak']) for mode in MODES}
    held = {mode: max(r['params'] + r['grads'] + r['optimizer'] for r in runs[mode])
            for mode in MODES}
    arch = args.arch + ('' if args.channels is None else f' (channels {args.channels})')
    print(f'InternImage-{arch}: {runs["ddp"][0]["num_params"]:,} parameters (with a 10-class '
          f'head), {args.nproc} ranks, batch {args.batch} per rank at {args.shape}x'
          f'{args.shape}, with_cp={args.with_cp}, {args.device}, AdamW, {args.steps} steps')
    print('| strategy | params MB/rank | grads MB/rank | AdamW MB/rank | held MB/rank | '
          'peak MB/rank | s/step | held vs DDP | peak vs DDP |')
    print('|---|---|---|---|---|---|---|---|---|')
    for mode in MODES:
        r = max(runs[mode], key=lambda r: r['params'] + r['grads'] + r['optimizer'])
        print(f'| {mode.upper()} | {_mb(r["params"])} | {_mb(r["grads"])} | '
              f'{_mb(r["optimizer"])} | {_mb(held[mode])} | {_mb(worst[mode]["peak"])} | '
              f'{max(x["step_s"] for x in runs[mode]):.2f} | '
              f'{held[mode] / held["ddp"]:.2f}x | '
              f'{worst[mode]["peak"] / worst["ddp"]["peak"]:.2f}x |')
    return runs


if __name__ == '__main__':
    main()
