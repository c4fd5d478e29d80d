"""Throughput and peak memory of a config's model, beside reference models, in one run.

    python tools/analysis_tools/benchmark_model.py [CONFIG] [--shape 224] [--batch 8]
        [--iters 10] [--train] [--device cpu|cuda] [--no-compare]
        [--modes eager compile compile-freezing bf16 onnxruntime] [--profile] [--rounds 3]
        [--plot FILE.png]

Measures images/s and peak memory of inference (and, with --train, of a training step:
forward, loss, backward, optimizer step) for
  * CONFIG (default: InternImage-T,
    configs/classification/internimage-t_32xb128_in1k-224px.py) with the
    compiled DCNv3 op (core_op 'DCNv3'),
  * the same model on the pure-PyTorch path ('DCNv3_pytorch'; eager mode only),
  * mmpretrain's ConvNeXt-T and Swin-T (their own configs),
in each of the ``--modes``. Peak memory comes from a run of each model in a fresh process (the
resident-set growth on CPU, max_memory_allocated on GPU). The speeds come from one process
where the models take turns, one step each for ``--iters`` rounds: the table shows the median
images/s, and each ratio is the median of the per-round ratios with its quartiles, so that the
drift of a shared machine's speed does not tilt the comparison; a round during which the
hypervisor took more than ``--max-steal`` of the CPU time (steal, /proc/stat) is run again.
Modes:
  eager        plain PyTorch (default);
  compile      ``torch.compile(model)`` (compilation excluded from the timing);
  compile-freezing  inference only: the same with Inductor's ``freezing`` (weights folded in
               as constants, which lets Inductor use its oneDNN linear/conv fusions on CPU);
  bf16         ``torch.autocast(device, dtype=torch.bfloat16)``;
  onnxruntime  inference only: the classifier exported to ONNX (standard operators; DCNv3 as
               GridSample) and run by onnxruntime with the same number of threads.
--profile prints where InternImage's inference time goes (share per block part: projections,
offset branch, block norms, DCNv3 core + softmax, MLP, the rest), with the plain PyTorch ops
our faster paths replace (F.softmax, separate linear/activation/skip, ATen's GELU, the offset
branch's conv, LayerNorm and GELU modules) and as shipped, --rounds runs of each. --plot
writes a bar chart of images/s per model and mode.
Targets on CPU (eager): InternImage-T >= 1.0x ConvNeXt-T for inference and the training step.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / 'configs' / 'classification' / 'internimage-t_32xb128_in1k-224px.py'
REFERENCES = {
    'ConvNeXt-T': 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
    'Swin-T': 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
}


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _build_step(config: str, core_op: str | None, shape: int, batch: int, train: bool,
                device: str, mode: str) -> tuple[Callable[[], None], int]:
    """Build the classifier; return one inference or training step on a fixed batch (warmed
    up: compiled under 'compile') and the parameter count."""
    import torch
    from mmengine.config import Config

    from internimage_mm.apis import build_model
    from internimage_mm.models.layers.dcnv3 import set_core_op

    cfg = Config.fromfile(config)
    if core_op is not None and 'backbone' in cfg.model:
        cfg.model.backbone.with_cp = False
    model = build_model(cfg, pretrained=False, device=device)
    if core_op is not None and set_core_op(model, core_op) == 0:
        raise SystemExit(f'{config} has no DCNv3 module to switch to {core_op}')
    x = torch.randn(batch, 3, shape, shape, device=device)
    params = sum(p.numel() for p in model.parameters())
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if mode == 'bf16' else
                contextlib.nullcontext())
    if mode == 'compile-freezing':
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
    net = torch.compile(model) if mode.startswith('compile') else model
    if mode == 'onnxruntime':
        run = _onnxruntime_step(model, x)
    elif train:
        from mmpretrain.structures import DataSample
        model.train()
        samples = [DataSample().set_gt_label(i % 10) for i in range(batch)]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def run():
            opt.zero_grad(set_to_none=True)
            with autocast:
                losses = net(x, samples, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
            opt.step()
    else:
        model.eval()

        def run():
            with torch.no_grad(), autocast:
                net(x, mode='tensor')

    def step():
        run()
        sync()
    step()  # warm-up (also allocates the steady-state buffers; compiles under 'compile')
    if mode.startswith('compile'):
        step()
    return step, params


def measure(config: str, core_op: str | None, shape: int, batch: int, iters: int, train: bool,
            device: str, mode: str = 'eager') -> dict:
    """Runs in a worker process of its own: one model's speed and peak memory."""
    import torch
    step, params = _build_step(config, core_op, shape, batch, train, device, mode)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if device == 'cuda' else _rss_bytes()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    median = statistics.median(times)
    return dict(images_per_s=batch / median, ms_per_batch=median * 1e3,
                peak_mb=max(peak, 0) / 2**20, params_m=params / 1e6)


def measure_interleaved(models: list[dict], shape: int, batch: int, iters: int, train: bool,
                        device: str, mode: str, max_steal: float = 0.05) -> dict:
    """Runs in one worker process: every model's step time (s) in ``iters`` rounds of one step
    each (see :func:`internimage_mm.analysis.timing.interleave`)."""
    from internimage_mm.analysis.timing import interleave
    steps = {m['name']: _build_step(m['config'], m['core_op'], shape, batch, train, device,
                                    mode)[0] for m in models}
    return interleave(steps, iters, max_steal)


def _onnxruntime_step(model, x):
    """Export the classifier's logits (DCNv3 on its pure-PyTorch core: standard operators) and
    return one onnxruntime inference on ``x``."""
    import tempfile

    import onnxruntime as ort
    import torch

    from internimage_mm.apis.export import _ClassifierLogits, export_onnx
    from internimage_mm.models.layers.dcnv3 import set_core_op

    model.eval()
    set_core_op(model, 'DCNv3_pytorch')
    onnx_file = Path(tempfile.mkdtemp()) / 'model.onnx'
    export_onnx(_ClassifierLogits(model), ['logits'], onnx_file, tuple(x.shape),
                check_batch_sizes=())
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_file), options, providers=['CPUExecutionProvider'])
    feed = {'images': x.numpy()}
    return lambda: session.run(None, feed)


#: block parts of InternImage's profile, by the name of the module that does the work
PARTS = ('projections (DCNv3 input/output/offset/mask)',
         'offset branch (depthwise conv, LN, GELU)', 'block norms', 'DCNv3 core + softmax + glue',
         'MLP', 'rest (stem, downsampling, head)')


def profile_parts(config: str, shape: int, batch: int, iters: int, plain: bool = False) -> dict:
    """Share of InternImage's eager inference time per block part (forward hooks, CPU).

    ``plain``: with the plain PyTorch ops our faster paths replace (MKL's GEMMs on the plain
    weights, no oneDNN kernels or packed weights, ATen's LayerNorm, separate offset and mask
    GEMMs, ``F.softmax`` for the mask softmax, separate linear, activation and skip additions,
    ATen's GELU out of place, the offset branch's conv, LayerNorm and GELU as three modules, the
    MLP layer by layer instead of in row tiles), for a before/after table.
    """
    import torch
    import torch.nn.functional as F
    from mmengine.config import Config
    from torch import nn

    from internimage_mm.apis import build_model
    from internimage_mm.models.backbones import intern_image
    from internimage_mm.models.layers import dcnv3 as dcnv3_module
    from internimage_mm.models.layers import fused_linear
    from internimage_mm.models.layers import norm as norm_module
    from internimage_mm.models.layers.dcnv3 import DCNv3

    if plain:  # (each run in a worker process of its own)
        fused_linear._enabled = False
        norm_module.LayerNorm.forward = nn.LayerNorm.forward  # ATen's LayerNorm kernel
        dcnv3_module.point_softmax = lambda x: F.softmax(x.float(), dim=-1)
        dcnv3_module.ops_dcnv3 = types.SimpleNamespace(softmax_kernel_applies=lambda *a: False)
        # activations out of place (ATen's), the offset branch as its three modules, the MLP
        # layer by layer
        for module in (fused_linear, dcnv3_module, intern_image):
            module.may_overwrite = lambda *tensors: False
        intern_image.tiled_mlp_applies = lambda *args: False
    model = build_model(Config.fromfile(config), pretrained=False, device='cpu').eval()
    spent = dict.fromkeys(PARTS, 0.0)
    starts: dict[int, float] = {}

    def timed(fn):
        # DCNv3's projections run through fused_linear (no module call when fused): time them
        # there, and take them off the DCNv3 part that includes them
        def run(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            elapsed = time.perf_counter() - start
            spent[PARTS[0]] += elapsed
            spent[PARTS[3]] -= elapsed
            return out
        return run

    dcnv3_module.linear_act = timed(fused_linear.linear_act)
    dcnv3_module.linear_add = timed(fused_linear.linear_add)
    dcnv3_module.linear_cat = timed(fused_linear.linear_cat)
    offset_features = DCNv3._offset_features

    def timed_branch(self, x):  # one kernel as shipped, three modules in the plain run
        start = time.perf_counter()
        out = offset_features(self, x)
        elapsed = time.perf_counter() - start
        spent[PARTS[1]] += elapsed
        spent[PARTS[3]] -= elapsed
        return out

    DCNv3._offset_features = timed_branch

    def part_of(name: str, module: nn.Module) -> str | None:
        leaf = name.rsplit('.', 1)[-1]
        if isinstance(module, DCNv3):
            return PARTS[3]  # minus its children, below
        if '.dw_conv.' in name:
            return None  # timed as the offset branch
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)) or \
                type(module).__name__.endswith('LayerNorm'):
            return PARTS[2]
        if leaf == 'mlp':
            return PARTS[4]
        return None

    dcn_names = [n for n, m in model.named_modules() if isinstance(m, DCNv3)]
    for name, module in model.named_modules():
        part = part_of(name, module)
        if part is None:
            continue
        # a conv or norm inside DCNv3 counts for its part, not for the DCNv3 rest
        in_dcn = part != PARTS[3] and any(name.startswith(f'{d}.') for d in dcn_names)

        def pre(mod, args):
            starts[id(mod)] = time.perf_counter()

        def post(mod, args, out, _part=part, _in_dcn=in_dcn):
            elapsed = time.perf_counter() - starts.pop(id(mod))
            spent[_part] += elapsed
            if _in_dcn:
                spent[PARTS[3]] -= elapsed
        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)
    x = torch.randn(batch, 3, shape, shape)
    with torch.no_grad():
        model(x, mode='tensor')
        for k in spent:
            spent[k] = 0.0
        start = time.perf_counter()
        for _ in range(iters):
            model(x, mode='tensor')
        total = time.perf_counter() - start
    spent[PARTS[5]] = total - sum(spent[p] for p in PARTS[:5])
    return {k: v / total for k, v in spent.items()} | {'total_ms': total / iters * 1e3}


def _worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, '--worker', json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        # the worker's own traceback, however many warnings came before it
        start = proc.stderr.find('Traceback (most recent call last)')
        detail = proc.stderr[start:] if start >= 0 else proc.stderr[-3000:]
        raise SystemExit(f'benchmark of {spec["name"]} failed:\n{detail}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sweep(models: list, name: str, mode: str, task: str, args: argparse.Namespace) -> dict:
    """Every model in ``mode``: its peak memory in a process of its own, the speeds in one
    process where the models take turns step by step."""
    specs = []
    for model_name, config, core_op in models:
        if mode == 'onnxruntime' and core_op == 'DCNv3':
            core_op = 'DCNv3_pytorch'  # the exported graph is the pure-PyTorch one
            model_name = f'{name} (ONNX: DCNv3 as GridSample)'
        elif mode != 'eager' and core_op == 'DCNv3_pytorch':
            continue  # the pure-PyTorch path is the eager baseline only
        config = str(config)
        if config.startswith('mmpretrain::'):  # mmpretrain's own config files
            import mmpretrain
            config = str(Path(mmpretrain.__file__).parent / '.mim' / 'configs' /
                         config.split('::', 1)[1])
        specs.append(dict(name=model_name, config=config, core_op=core_op))
    common = dict(shape=args.shape, batch=args.batch, train=task == 'train step',
                  device=args.device, mode=mode)
    alone = {s['name']: _worker(dict(s, iters=1, **common)) for s in specs}
    res = _worker(dict(common, name=f'{mode} {task}', interleaved=specs, iters=args.iters,
                       max_steal=args.max_steal))
    summary = summarise(alone, res['times'], args.batch)
    steal = dict(share=res['steal_share'], redone=res['redone'])
    return summary, steal


def summarise(alone: dict[str, dict], times: dict[str, list[float]], batch: int) -> dict:
    """Rows of the table: median speed of the interleaved steps; each ratio to the pure-PyTorch
    path and to ConvNeXt-T is the median of the per-round ratios, with their quartiles; params
    and peak memory from the run alone."""
    from internimage_mm.analysis.timing import quartiles

    refs = dict(vs_pure=next((k for k in times if 'pure-PyTorch' in k), None),
                vs_convnext='ConvNeXt-T' if 'ConvNeXt-T' in times else None)
    out = {}
    for model_name, ts in times.items():
        median = statistics.median(ts)
        row = dict(params_m=alone[model_name]['params_m'], peak_mb=alone[model_name]['peak_mb'],
                   images_per_s=batch / median, ms_per_batch=median * 1e3)
        for key, ref in refs.items():
            if ref is not None:  # a ratio of images/s: the reference's time over ours
                lo, mid, hi = quartiles([r / t for r, t in zip(times[ref], ts)])
                row.update({key: mid, f'{key}_q1': lo, f'{key}_q3': hi})
        out[model_name] = row
    return out


def _plot(results: list[tuple[str, str, float]], out: str, title: str) -> None:
    """Horizontal bars: images/s of every (model, mode) row, coloured by mode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r[1] for r in results))
    colours = {m: f'C{i}' for i, m in enumerate(modes)}
    label_chars = max(len(f'{r[0]}, {r[1]}') for r in results)
    fig, ax = plt.subplots(figsize=(6 + 0.04 * label_chars, 1.0 + 0.28 * len(results)))
    ys = range(len(results))[::-1]
    ax.barh(list(ys), [r[2] for r in results], color=[colours[r[1]] for r in results])
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f'{r[0]}, {r[1]}' for r in results], fontsize=7)
    for y, r in zip(ys, results):
        ax.text(r[2], y, f' {r[2]:.1f}', va='center', fontsize=6)
    ax.set_xlabel('images/s')
    ax.set_title(textwrap.fill(title, 80), fontsize=8)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches='tight')
    plt.close(fig)


MODES = ('eager', 'compile', 'compile-freezing', 'bf16', 'onnxruntime')
INFERENCE_ONLY = ('compile-freezing', 'onnxruntime')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=str(DEFAULT_CONFIG))
    parser.add_argument('--shape', type=int, default=224)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--train', action='store_true', help='also time a training step')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--no-compare', action='store_true',
                        help='skip the pure-PyTorch path and the reference models')
    parser.add_argument('--references', nargs='+', default=list(REFERENCES),
                        choices=list(REFERENCES), help='reference models to compare with')
    parser.add_argument('--modes', nargs='+', default=['eager'], choices=MODES)
    parser.add_argument('--rounds', type=int, default=3,
                        help='--profile: runs of each variant, alternating (medians shown)')
    parser.add_argument('--profile', action='store_true',
                        help="print the share of CONFIG's inference time per block part")
    parser.add_argument('--plot', default=None, help='write a PNG bar chart of images/s here')
    parser.add_argument('--max-steal', type=float, default=0.05,
                        help='redo a round during which the hypervisor took more than this '
                        "share of the CPUs' time (steal; shared VMs); 1 keeps every round")
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        if spec.get('profile'):
            print(json.dumps(profile_parts(spec['config'], spec['shape'], spec['batch'],
                                           spec['iters'], spec['plain'])))
            return
        if spec.get('interleaved'):
            print(json.dumps(measure_interleaved(
                spec['interleaved'], spec['shape'], spec['batch'], spec['iters'], spec['train'],
                spec['device'], spec['mode'], spec.get('max_steal', 0.05))))
            return
        print(json.dumps(measure(spec['config'], spec['core_op'], spec['shape'], spec['batch'],
                                 spec['iters'], spec['train'], spec['device'], spec['mode'])))
        return
    if not Path(args.config).is_file():
        raise SystemExit(f'config {args.config} does not exist')

    import torch

    from internimage_mm.analysis.machine import describe_machine
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    name = Path(args.config).stem
    models = [(f'{name} (compiled DCNv3)', args.config, 'DCNv3')]
    if not args.no_compare:
        models.append((f'{name} (pure-PyTorch DCNv3)', args.config, 'DCNv3_pytorch'))
        models += [(k, v, None) for k, v in REFERENCES.items() if k in args.references]
    tasks = ['inference'] + (['train step'] if args.train else [])
    header = (f'{args.device}: {describe_machine(args.device)}; batch {args.batch}, '
              f'{args.shape}x{args.shape}')
    print(f'\n### Model benchmark on {header}\n')
    print('| model | mode | params | images/s | ms/batch | peak MB | vs pure-PyTorch '
          '| vs ConvNeXt-T (same mode) |')
    print('|---|---|---|---|---|---|---|---|')
    plotted = []
    steal_notes = []
    for task in tasks:
        for mode in args.modes:
            if mode in INFERENCE_ONLY and task != 'inference' or \
                    mode == 'onnxruntime' and args.device != 'cpu':
                continue
            label = task if mode == 'eager' else f'{task}, {mode}'
            results, steal = _sweep(models, name, mode, task, args)
            steal_notes.append(f"{label}: {100 * steal['share']:.1f}%, "
                               f"{steal['redone']} round(s) redone")
            pure = results.get(f'{name} (pure-PyTorch DCNv3)')
            convnext = results.get('ConvNeXt-T')
            for model_name, r in results.items():
                vs_pure = f"{r['vs_pure']:.1f}x" if pure else '-'
                vs_cnx = f"{r['vs_convnext']:.2f}x" if convnext else '-'
                if convnext and args.iters > 2:
                    vs_cnx += f" ({r['vs_convnext_q1']:.2f}-{r['vs_convnext_q3']:.2f})"
                print(f"| {model_name} | {label} | {r['params_m']:.1f}M | "
                      f"{r['images_per_s']:.1f} | {r['ms_per_batch']:.0f} | "
                      f"{r['peak_mb']:.0f} | {vs_pure} | {vs_cnx} |", flush=True)
                plotted.append((model_name, label, r['images_per_s']))
    print(f'\nCPU time taken by the hypervisor (steal) in the rounds kept, rounds redone '
          f"above {100 * args.max_steal:.0f}%: " + '; '.join(steal_notes))
    if args.profile:
        # before/after: the plain PyTorch ops, then ours, alternately (the median per part)
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.rounds):
            for plain in runs:
                runs[plain].append(_worker(dict(
                    name='profile', profile=True, config=args.config, shape=args.shape,
                    batch=args.batch, iters=args.iters, plain=plain)))
        ms = {k: statistics.median(r['total_ms'] for r in v) for k, v in runs.items()}
        print(f'\n{name}, eager inference per block part (forward hooks; median of '
              f'{args.rounds} rounds):\n\n| block part | plain PyTorch ops: share, ms '
              '| as shipped: share, ms |\n|---|---|---|')
        for part in (*PARTS, 'total_ms'):
            cells = []
            for plain in runs:
                t = statistics.median(r[part] * (1 if part == 'total_ms' else r['total_ms'])
                                      for r in runs[plain])
                cells.append(f'{t:.0f} ms' if part == 'total_ms'
                             else f'{100 * t / ms[plain]:.1f}%, {t:.0f} ms')
            print(f"| {'total per batch' if part == 'total_ms' else part} | "
                  f'{cells[0]} | {cells[1]} |')
    if args.plot:
        _plot(plotted, args.plot, header)
        print(f'\nwrote {args.plot}')


if __name__ == '__main__':
    main()
