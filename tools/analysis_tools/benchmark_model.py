"""Throughput and peak memory of a config's model, beside reference models, in one run.

    python tools/analysis_tools/benchmark_model.py [CONFIG] [--shape 224] [--batch 8]
        [--iters 10] [--train] [--device cpu|cuda] [--no-compare]

Measures images/s and peak memory of inference (and, with --train, of a training step:
forward, loss, backward, optimizer step) for
  * CONFIG (default: InternImage-T,
    configs/classification/internimage-t_32xb128_in1k-224px.py) with the
    compiled DCNv3 op (core_op 'DCNv3'),
  * the same model on the pure-PyTorch path ('DCNv3_pytorch'),
  * mmpretrain's ConvNeXt-T and Swin-T (their own configs),
each in a fresh process (peak memory: the resident-set growth on CPU, max_memory_allocated on
GPU). Targets on CPU: compiled >= 5x the pure-PyTorch path, and >= 0.5x ConvNeXt-T.
"""
from __future__ import annotations

import argparse
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
            device: str) -> dict:
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
    if train:
        from mmpretrain.structures import DataSample
        model.train()
        samples = [DataSample().set_gt_label(i % 10) for i in range(batch)]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            losses = model(x, samples, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x, mode='tensor')
    step()  # warm-up (also allocates the steady-state buffers)
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


def _worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, '--worker', json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'benchmark of {spec["name"]} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure(spec['config'], spec['core_op'], spec['shape'], spec['batch'],
                                 spec['iters'], spec['train'], spec['device'])))
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
        models += [(k, v, None) for k, v in REFERENCES.items()]
    modes = ['inference'] + (['train step'] if args.train else [])
    if args.device == 'cuda':
        machine = torch.cuda.get_device_name()
    else:
        machine = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                        if line.startswith('model name')), platform.machine())
        machine += f', {torch.get_num_threads()} threads'
    print(f'\n### Model benchmark on {args.device}: {machine} (torch {torch.__version__}); '
          f'batch {args.batch}, {args.shape}x{args.shape}\n')
    print('| model | mode | params | images/s | ms/batch | peak MB | vs pure-PyTorch '
          '| vs ConvNeXt-T |')
    print('|---|---|---|---|---|---|---|---|')
    for mode in modes:
        results = {}
        for label, config, core_op in models:
            config = str(config)
            if config.startswith('mmpretrain::'):  # mmpretrain's own config files
                import mmpretrain
                config = str(Path(mmpretrain.__file__).parent / '.mim' / 'configs' /
                             config.split('::', 1)[1])
            results[label] = _worker(dict(name=label, config=config, core_op=core_op,
                                          shape=args.shape, batch=args.batch, iters=args.iters,
                                          train=mode == 'train step', device=args.device))
        pure = results.get(f'{name} (pure-PyTorch DCNv3)')
        convnext = results.get('ConvNeXt-T')
        for label, r in results.items():
            vs_pure = f"{r['images_per_s'] / pure['images_per_s']:.1f}x" if pure else '-'
            vs_cnx = f"{r['images_per_s'] / convnext['images_per_s']:.2f}x" if convnext else '-'
            print(f"| {label} | {mode} | {r['params_m']:.1f}M | {r['images_per_s']:.1f} | "
                  f"{r['ms_per_batch']:.0f} | {r['peak_mb']:.0f} | {vs_pure} | {vs_cnx} |",
                  flush=True)


if __name__ == '__main__':
    main()
