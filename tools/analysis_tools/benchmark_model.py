"""Throughput and peak memory of a config's model, beside reference models, in one run.

    python tools/analysis_tools/benchmark_model.py [CONFIG] [--shape 224] [--batch 8]
        [--iters 10] [--train] [--device cpu|cuda] [--no-compare]
        [--modes eager compile bf16 onnxruntime] [--profile] [--plot FILE.png]

Measures images/s and peak memory of inference (and, with --train, of a training step:
forward, loss, backward, optimizer step) for
  * CONFIG (default: InternImage-T,
    configs/classification/internimage-t_32xb128_in1k-224px.py) with the
    compiled DCNv3 op (core_op 'DCNv3'),
  * the same model on the pure-PyTorch path ('DCNv3_pytorch'),
  * mmpretrain's ConvNeXt-T and Swin-T (their own configs),
each in a fresh process (peak memory: the resident-set growth on CPU, max_memory_allocated on
GPU), in each of the ``--modes``:
  eager        plain PyTorch (default);
  compile      ``torch.compile(model)`` (compilation excluded from the timing);
  bf16         ``torch.autocast(device, dtype=torch.bfloat16)``;
  onnxruntime  inference only: the classifier exported to ONNX (standard operators; DCNv3 as
               GridSample) and run by onnxruntime with the same number of threads.
--profile prints where InternImage's inference time goes (share per block part: projections,
depthwise conv, norms, DCNv3 core + softmax, MLP, the rest). --plot writes a bar chart of
images/s per model and mode.
Targets on CPU (eager): InternImage-T >= 1.0x ConvNeXt-T for inference and the training step.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
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


def measure(config: str, core_op: str | None, shape: int, batch: int, iters: int, train: bool,
            device: str, mode: str = 'eager') -> dict:
    """Runs in the worker process: build the classifier, time it, report peak memory."""
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
    net = torch.compile(model) if mode == 'compile' else model
    if mode == 'onnxruntime':
        step = _onnxruntime_step(model, x)
    elif train:
        from mmpretrain.structures import DataSample
        model.train()
        samples = [DataSample().set_gt_label(i % 10) for i in range(batch)]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                losses = net(x, samples, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                net(x, mode='tensor')
    step()  # warm-up (also allocates the steady-state buffers; compiles under 'compile')
    if mode == 'compile':
        step()
    sync()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if device == 'cuda' else _rss_bytes()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times.sort()
    median = times[len(times) // 2]
    return dict(images_per_s=batch / median, ms_per_batch=median * 1e3,
                peak_mb=max(peak, 0) / 2**20, params_m=params / 1e6)


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
PARTS = ('projections (DCNv3 input/output/offset/mask)', 'depthwise conv (offset branch)',
         'norms', 'DCNv3 core + softmax + glue', 'MLP', 'rest (stem, downsampling, head)')


def profile_parts(config: str, shape: int, batch: int, iters: int) -> dict:
    """Share of InternImage's eager inference time per block part (forward hooks, CPU)."""
    import torch
    from mmengine.config import Config
    from torch import nn

    from internimage_mm.apis import build_model
    from internimage_mm.models.layers.dcnv3 import DCNv3

    model = build_model(Config.fromfile(config), pretrained=False, device='cpu').eval()
    spent = dict.fromkeys(PARTS, 0.0)
    starts: dict[int, float] = {}

    def part_of(name: str, module: nn.Module) -> str | None:
        leaf = name.rsplit('.', 1)[-1]
        if isinstance(module, DCNv3):
            return PARTS[3]  # minus its children, below
        if '.dcn.' in f'.{name}.' and leaf in ('input_proj', 'output_proj', 'offset', 'mask'):
            return PARTS[0]
        if name.endswith('dw_conv.0'):
            return PARTS[1]
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
        # a projection, conv or norm inside DCNv3 counts for its part, not for the DCNv3 rest
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
        raise SystemExit(f'benchmark of {spec["name"]} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _plot(results: list[tuple[str, str, float]], out: str, title: str) -> None:
    """Horizontal bars: images/s of every (model, mode) row, coloured by mode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r[1] for r in results))
    colours = {m: f'C{i}' for i, m in enumerate(modes)}
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.28 * len(results)))
    ys = range(len(results))[::-1]
    ax.barh(list(ys), [r[2] for r in results], color=[colours[r[1]] for r in results])
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f'{r[0]}, {r[1]}' for r in results], fontsize=7)
    for y, r in zip(ys, results):
        ax.text(r[2], y, f' {r[2]:.1f}', va='center', fontsize=6)
    ax.set_xlabel('images/s')
    ax.set_title(title, fontsize=8)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


MODES = ('eager', 'compile', 'bf16', 'onnxruntime')


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
    parser.add_argument('--profile', action='store_true',
                        help="print the share of CONFIG's inference time per block part")
    parser.add_argument('--plot', default=None, help='write a PNG bar chart of images/s here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        if spec.get('profile'):
            print(json.dumps(profile_parts(spec['config'], spec['shape'], spec['batch'],
                                           spec['iters'])))
            return
        print(json.dumps(measure(spec['config'], spec['core_op'], spec['shape'], spec['batch'],
                                 spec['iters'], spec['train'], spec['device'], spec['mode'])))
        return
    if not Path(args.config).is_file():
        raise SystemExit(f'config {args.config} does not exist')

    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    name = Path(args.config).stem
    models = [(f'{name} (compiled DCNv3)', args.config, 'DCNv3')]
    if not args.no_compare:
        models.append((f'{name} (pure-PyTorch DCNv3)', args.config, 'DCNv3_pytorch'))
        models += [(k, v, None) for k, v in REFERENCES.items() if k in args.references]
    tasks = ['inference'] + (['train step'] if args.train else [])
    if args.device == 'cuda':
        machine = torch.cuda.get_device_name()
    else:
        machine = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                        if line.startswith('model name')), platform.machine())
        machine += f', {torch.get_num_threads()} threads'
    header = (f'{args.device}: {machine} (torch {torch.__version__}); batch {args.batch}, '
              f'{args.shape}x{args.shape}')
    print(f'\n### Model benchmark on {header}\n')
    print('| model | mode | params | images/s | ms/batch | peak MB | vs pure-PyTorch '
          '| vs ConvNeXt-T (same mode) |')
    print('|---|---|---|---|---|---|---|---|')
    plotted = []
    for task in tasks:
        for mode in args.modes:
            if mode == 'onnxruntime' and (task != 'inference' or args.device != 'cpu'):
                continue
            label = task if mode == 'eager' else f'{task}, {mode}'
            results = {}
            for model_name, config, core_op in models:
                if mode == 'onnxruntime' and core_op == 'DCNv3':
                    core_op = 'DCNv3_pytorch'  # the exported graph is the pure-PyTorch one
                    model_name = f'{name} (ONNX: DCNv3 as GridSample)'
                elif mode == 'onnxruntime' and core_op == 'DCNv3_pytorch':
                    continue
                config = str(config)
                if config.startswith('mmpretrain::'):  # mmpretrain's own config files
                    import mmpretrain
                    config = str(Path(mmpretrain.__file__).parent / '.mim' / 'configs' /
                                 config.split('::', 1)[1])
                results[model_name] = _worker(dict(
                    name=model_name, config=config, core_op=core_op, shape=args.shape,
                    batch=args.batch, iters=args.iters, train=task == 'train step',
                    device=args.device, mode=mode))
            pure = results.get(f'{name} (pure-PyTorch DCNv3)')
            convnext = results.get('ConvNeXt-T')
            for model_name, r in results.items():
                vs_pure = f"{r['images_per_s'] / pure['images_per_s']:.1f}x" if pure else '-'
                vs_cnx = (f"{r['images_per_s'] / convnext['images_per_s']:.2f}x"
                          if convnext else '-')
                print(f"| {model_name} | {label} | {r['params_m']:.1f}M | "
                      f"{r['images_per_s']:.1f} | {r['ms_per_batch']:.0f} | "
                      f"{r['peak_mb']:.0f} | {vs_pure} | {vs_cnx} |", flush=True)
                plotted.append((model_name, label, r['images_per_s']))
    if args.profile:
        shares = _worker(dict(name='profile', profile=True, config=args.config,
                              shape=args.shape, batch=args.batch, iters=args.iters))
        print(f"\n{name}, eager inference, {shares['total_ms']:.0f} ms per batch "
              '(forward hooks):\n\n| block part | share of time |\n|---|---|')
        for part in PARTS:
            print(f'| {part} | {100 * shares[part]:.1f}% |')
    if args.plot:
        _plot(plotted, args.plot, header)
        print(f'\nwrote {args.plot}')


if __name__ == '__main__':
    main()
