"""The machine a benchmark ran on, as one line for its report."""
from __future__ import annotations

import platform

import torch


def describe_machine(device: str = 'cpu') -> str:
    """``'<CPU model>, <n> threads (torch <v>[, DCNv3 kernels <ISA>])'`` or ``'<GPU name> (torch
    <v>, CUDA <v>)'``; the ISA is the compiled DCNv3 CPU kernel version this machine runs."""
    if device == 'cuda':
        return (f'{torch.cuda.get_device_name()} (torch {torch.__version__}, '
                f'CUDA {torch.version.cuda})')
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):  # not Linux, or no model name there
        pass
    kernels = ''
    try:
        from ops_dcnv3 import _C
        kernels = f', DCNv3 kernels {_C.cpu_kernel_isa()}'
    except (ImportError, AttributeError, RuntimeError):  # not built, or an older build
        pass
    return f'{cpu}, {torch.get_num_threads()} threads (torch {torch.__version__}{kernels})'


def steal_seconds() -> float | None:
    """CPU time the hypervisor gave to other guests since boot, summed over CPUs (the 'steal'
    column of /proc/stat), or None where the kernel does not report it.

    On a shared VM a benchmark step that overlaps a burst of steal runs slower for reasons
    outside the code; the benchmark tools use this to see and redo such steps.
    """
    import os
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic instructions (AVX512-BF16 or AMX). Without
    them oneDNN emulates bfloat16 in float32 with conversions, and bfloat16 autocast runs
    several times slower than float32 (docs/benchmarks.md: 7-9x for inference, 23-30x for a
    training step of InternImage-T and ConvNeXt-T on an AVX2 EPYC)."""
    cpu = getattr(torch, 'cpu', None)
    checks = [getattr(cpu, name, None) for name in
              ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    if not any(callable(check) for check in checks):
        return True  # an older torch: cannot tell, do not warn
    return any(callable(check) and check() for check in checks)
