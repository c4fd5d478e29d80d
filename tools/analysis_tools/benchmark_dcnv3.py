"""Benchmark the DCNv3 operator against the official pure-PyTorch core, our pure-PyTorch path
and a 3x3 depthwise conv, side by side in one run (interleaved: each round times every path once).

For each shape it times the forward, the backward alone and forward+backward of: the compiled
op (``ops_dcnv3.dcnv3``), the official core's algorithm (``dcnv3_official_pytorch``: our
faithful re-implementation of the official ``dcnv3_core_pytorch``, the only CPU path official
users have), our pure-PyTorch path (``dcnv3_pytorch``) and ``F.conv2d(groups=C)`` with a 3x3
kernel on the same tensor, and prints the ratios:

  bwd/fwd          compiled backward time / compiled forward time        (CPU target <= 3)
  official/op f+b  official-core time / compiled time, forward+backward  (CPU target >= 12 at
                   T stage 1, >= 8 at H stage 1)
  ref/op fwd, f+b  our pure-PyTorch path / compiled                      (CPU fwd >= 10, f+b >= 5)
  op/dw fwd        compiled forward time / depthwise-conv forward time   (CPU <= 8, GPU <= 2)

Times are medians over the rounds; each ratio is the median of the per-round ratios (the two
paths timed moments apart), official/op f+b with its quartiles in brackets. A round during
which the hypervisor took more than 5% of the CPUs' time (steal) is run again, and the steal
share of the rounds kept is printed (see ``internimage_mm.analysis.timing``).

``--strategies`` adds, on CPU, the backward time of each way the CPU backward avoids write
races on grad_input (``dcnv3_backward(strategy=...)``: owner tasks, atomic adds, row bands
with a grad_input copy each, and the automatic choice), relative to the forward, for each
shape at the given threads: the one to look at for batch 1 on a machine with many cores.

Usage:
  python tools/analysis_tools/benchmark_dcnv3.py [--device cpu|cuda|all] [--repeats N]
      [--dtypes float32 float16 bfloat16] [--shapes N,H,W,C,G ...] [--threads T]
      [--strategies]
"""
from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F

from internimage_mm.analysis.machine import describe_machine
from internimage_mm.analysis.timing import interleave, median_time, quartiles, round_ratios
from ops_dcnv3 import dcnv3, dcnv3_official_pytorch, dcnv3_pytorch, extension_available

# InternImage-T stages at 224 (batch 4) and InternImage-H stage 1 at 640 (batch 1).
DEFAULT_SHAPES = [
    ('T stage1', 4, 56, 56, 64, 4),
    ('T stage2', 4, 28, 28, 128, 8),
    ('T stage3', 4, 14, 14, 256, 16),
    ('T stage4', 4, 7, 7, 512, 32),
    ('H stage1', 1, 160, 160, 320, 10),
]
TARGETS = {'cpu': dict(fwd=10.0, fwdbwd=5.0, dw=8.0, bwd_ratio=3.0), 'cuda': dict(dw=2.0)}
# forward+backward speed-up over the official core per shape name (CPU)
OFFICIAL_TARGETS = {'T stage1': 12.0, 'H stage1': 8.0}


def _timed(fns: dict[str, Callable[[], object]], device: str, repeats: int,
           slow: frozenset[str] = frozenset(), warmup: int = 2) -> dict:
    """Each of ``fns`` timed in ``repeats`` interleaved rounds (``interleave``: a round under
    hypervisor steal is run again), each timed call after an untimed one that brings back the
    function's own working set (the calls before it evicted it), so each path is timed in its
    steady state, as when run alone. The ``slow`` ones run every other round. Returns
    ``interleave``'s result with the times in milliseconds."""
    sync = torch.cuda.synchronize if device == 'cuda' else None
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    if sync is not None:
        sync()
    res = interleave(fns, repeats, warm=True, sync=sync, every={k: 2 for k in slow})
    res['times'] = {k: [None if t is None else t * 1e3 for t in v]
                    for k, v in res['times'].items()}
    return res


def _ratio(times: dict[str, list[float | None]], a: str, b: str) -> float:
    """Median of the per-round ratios of path ``a`` to path ``b`` (nan if ``a`` was not timed)."""
    return statistics.median(round_ratios(times[a], times[b])) if a in times else float('nan')


def _inputs(n, h, w, c, g, dtype, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, h, w, c, generator=gen)
    off = (torch.rand(n, h, w, g * 18, generator=gen) * 4 - 2)
    mask = torch.randn(n, h, w, g, 9, generator=gen).softmax(-1).reshape(n, h, w, g * 9)
    return [t.to(device=device, dtype=dtype) for t in (x, off, mask)]


def bench_shape(n, h, w, c, g, dtype, device, repeats, skip_reference=False):
    args = (3, 3, 1, 1, 1, 1, 1, 1, g, c // g, 1.0, False)
    x, off, mask = _inputs(n, h, w, c, g, dtype, device)
    weight = torch.randn(c, 1, 3, 3, device=device, dtype=dtype)
    x_nchw = x.permute(0, 3, 1, 2)  # the same memory (channels_last), no copy

    def fwd(fn):
        def run():
            with torch.no_grad():
                fn(x, off, mask, *args)
        return run

    def fwdbwd(fn):
        leaves = [t.clone().requires_grad_() for t in (x, off, mask)]

        def run():
            for t in leaves:  # as after optimizer.zero_grad(): no accumulation into old grads
                t.grad = None
            out = fn(*leaves, *args)
            out.backward(torch.ones_like(out))
        return run

    def bwd(fn):
        leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
        out = fn(*leaves, *args)
        grad = torch.ones_like(out)

        def run():
            for t in leaves:
                t.grad = None
            out.backward(grad, retain_graph=True)
        return run

    def dw_fwd():
        with torch.no_grad():
            F.conv2d(x_nchw, weight, padding=1, groups=c)

    xd = x_nchw.detach().clone().requires_grad_()
    wd = weight.clone().requires_grad_()

    def dw_fwdbwd():
        xd.grad = wd.grad = None
        out = F.conv2d(xd, wd, padding=1, groups=c)
        out.backward(torch.ones_like(out))

    fns = dict(op_fwd=fwd(dcnv3), op_bwd=bwd(dcnv3), op_fwdbwd=fwdbwd(dcnv3), dw_fwd=dw_fwd,
               dw_fwdbwd=dw_fwdbwd)
    if not skip_reference:
        fns.update(official_fwd=fwd(dcnv3_official_pytorch),
                   official_fwdbwd=fwdbwd(dcnv3_official_pytorch),
                   ref_fwd=fwd(dcnv3_pytorch), ref_fwdbwd=fwdbwd(dcnv3_pytorch))
    return _timed(fns, device, repeats,
                  slow=frozenset(k for k in fns if k.startswith(('official', 'ref'))))


def _check(checks: list[str], label: str, value: str, ok: bool) -> None:
    checks.append(f"{label}: {'met' if ok else 'NOT met'} ({value})")


STRATEGIES = {'owner': 1, 'atomic': 2, 'replicas': 3, 'auto': 0}


def bench_strategies(n, h, w, c, g, repeats) -> dict[str, float]:
    """CPU float32: the forward and the backward under each strategy (ms), interleaved."""
    from ops_dcnv3.ops import dcnv3_backward  # the compiled op (checked in main)
    args = (3, 3, 1, 1, 1, 1, 1, 1, g, c // g, 1.0, False)
    x, off, mask = _inputs(n, h, w, c, g, torch.float32, 'cpu')
    grad = torch.ones(n, h, w, c)
    fns = {'fwd': lambda: dcnv3(x, off, mask, *args)}
    for name, code in STRATEGIES.items():
        fns[name] = functools.partial(dcnv3_backward, grad, x, off, mask, *args, strategy=code)
    return {k: median_time(v) for k, v in _timed(fns, 'cpu', repeats)['times'].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='all', choices=['cpu', 'cuda', 'all'])
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--dtypes', nargs='+', default=None,
                        help='default: float32 on CPU; float32 float16 bfloat16 on CUDA')
    parser.add_argument('--shapes', nargs='+', default=None, metavar='N,H,W,C,G')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--skip-reference', action='store_true',
                        help='skip the (slow) pure-PyTorch path')
    parser.add_argument('--strategies', action='store_true',
                        help='CPU: also time each backward strategy against the forward')
    args = parser.parse_args()
    if not extension_available():
        raise SystemExit('ops_dcnv3 extension is not built: `make ops` first')
    if args.threads:
        torch.set_num_threads(args.threads)
    # a shape given by its sizes keeps its InternImage name (and target), if it has one
    names = {tuple(dims): name for name, *dims in DEFAULT_SHAPES}
    shapes = DEFAULT_SHAPES if args.shapes is None else [
        (names.get(dims, s), *dims) for s in args.shapes
        for dims in [tuple(map(int, s.split(',')))]]
    devices = ['cpu', 'cuda'] if args.device == 'all' else [args.device]
    if 'cuda' in devices and not torch.cuda.is_available():
        if args.device == 'cuda':
            raise SystemExit('no CUDA device available')
        devices.remove('cuda')

    for device in devices:
        dtypes = args.dtypes or (['float32'] if device == 'cpu' else
                                 ['float32', 'float16', 'bfloat16'])
        print(f'\n### DCNv3 on {device}: {describe_machine(device)}\n')
        print('| shape | N,H,W,C,G | dtype | op fwd ms | op bwd ms | bwd/fwd | op f+b ms '
              '| official f+b ms | official/op f+b | official/op fwd | ref/op fwd | ref/op f+b '
              '| dw fwd ms | op/dw fwd |')
        print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
        nan = float('nan')
        worst = dict(fwd=float('inf'), fwdbwd=float('inf'), dw=0.0, bwd_ratio=0.0)
        official = {}
        steal = []
        for name, n, h, w, c, g in shapes:
            for dt in dtypes:
                res = bench_shape(n, h, w, c, g, getattr(torch, dt), device, args.repeats,
                                  args.skip_reference)
                times = res['times']
                steal.append((res['steal_share'], res['redone']))
                r = {k: median_time(v) for k, v in times.items()}

                sp_fwd = _ratio(times, 'ref_fwd', 'op_fwd')
                sp_fb = _ratio(times, 'ref_fwdbwd', 'op_fwdbwd')
                off_fwd = _ratio(times, 'official_fwd', 'op_fwd')
                off_fb, off_cell = nan, 'nan'
                if 'official_fwdbwd' in times:
                    q1, off_fb, q3 = quartiles(round_ratios(times['official_fwdbwd'],
                                                            times['op_fwdbwd']))
                    off_cell = f'{off_fb:.1f}x [{q1:.1f}, {q3:.1f}]'
                ratio_bwd = _ratio(times, 'op_bwd', 'op_fwd')
                vs_dw = _ratio(times, 'op_fwd', 'dw_fwd')
                worst['fwd'] = min(worst['fwd'], sp_fwd)
                worst['fwdbwd'] = min(worst['fwdbwd'], sp_fb)
                worst['dw'] = max(worst['dw'], vs_dw)
                worst['bwd_ratio'] = max(worst['bwd_ratio'], ratio_bwd)
                if dt == 'float32':
                    official[name] = off_fb
                print(f"| {name} | {n},{h},{w},{c},{g} | {dt} | {r['op_fwd']:.2f} | "
                      f"{r['op_bwd']:.2f} | {ratio_bwd:.1f}x | {r['op_fwdbwd']:.2f} | "
                      f"{r.get('official_fwdbwd', nan):.2f} | {off_cell} | {off_fwd:.1f}x | "
                      f"{sp_fwd:.1f}x | {sp_fb:.1f}x | {r['dw_fwd']:.2f} | {vs_dw:.1f}x |",
                      flush=True)
        t = TARGETS[device]
        checks: list[str] = []
        check = functools.partial(_check, checks)

        if 'bwd_ratio' in t:
            check(f"bwd/fwd <= {t['bwd_ratio']:g}x", f"worst {worst['bwd_ratio']:.1f}x",
                  worst['bwd_ratio'] <= t['bwd_ratio'])
        if device == 'cpu' and not args.skip_reference:
            for name, target in OFFICIAL_TARGETS.items():
                if name in official:
                    check(f'official/op f+b >= {target:g}x at {name}',
                          f'{official[name]:.1f}x', official[name] >= target)
        if 'fwd' in t and not args.skip_reference:
            check(f"ref/op fwd >= {t['fwd']:g}x", f"worst {worst['fwd']:.1f}x",
                  worst['fwd'] >= t['fwd'])
            check(f"ref/op f+b >= {t['fwdbwd']:g}x", f"worst {worst['fwdbwd']:.1f}x",
                  worst['fwdbwd'] >= t['fwdbwd'])
        check(f"op/dw fwd <= {t['dw']:g}x", f"worst {worst['dw']:.1f}x", worst['dw'] <= t['dw'])
        print('\nTargets: ' + '; '.join(checks))
        print('\nCPU time taken by the hypervisor (steal) in the rounds kept, per shape (rounds '
              'above 5% are run again): ' +
              ', '.join(f'{100 * share:.1f}% ({redone} redone)' for share, redone in steal))
        if device == 'cpu' and args.strategies:
            print(f'\nCPU backward strategies, {torch.get_num_threads()} threads (backward ms, '
                  'and / forward):\n')
            print('| shape | N,H,W,C,G | fwd ms | ' +
                  ' | '.join(f'{k} bwd' for k in STRATEGIES) + ' |')
            print('|---|---|---|' + '---|' * len(STRATEGIES))
            for name, n, h, w, c, g in shapes:
                r = bench_strategies(n, h, w, c, g, args.repeats)
                cells = ' | '.join(f"{r[k]:.2f} ({r[k] / r['fwd']:.1f}x)" for k in STRATEGIES)
                print(f"| {name} | {n},{h},{w},{c},{g} | {r['fwd']:.2f} | {cells} |",
                      flush=True)


if __name__ == '__main__':
    main()
