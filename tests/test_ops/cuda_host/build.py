"""Build the DCNv3 CUDA kernel file for the host (g++) and call its launchers through ctypes.

The kernel file itself stays unmodified: its ``<<<grid, block, shmem, stream>>>`` launches are
rewritten into calls of the stand-in launcher (``include/cuda_runtime.h``) in a copy made at
build time. ``mutations`` (pattern -> replacement, each applied exactly once) build deliberately
broken variants, so a test can show that the comparison catches them.
"""
from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CSRC = HERE.parents[2] / 'ops_dcnv3' / 'csrc'
KERNEL = CSRC / 'cuda' / 'dcnv3_cuda_kernel.cu'
DTYPES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}

_LAUNCH = re.compile(r'(?P<kernel>[A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s*<<<(?P<config>.*?)>>>\s*\(',
                     re.DOTALL)


def rewrite_launches(source: str) -> str:
    """``k<<<cfg>>>(args)`` -> ``::cuda_host::Launch(cfg).run(k, args)``."""

    def repl(m: re.Match) -> str:
        rest = source[m.end():].lstrip()
        sep = '' if rest.startswith(')') else ', '
        return f"::cuda_host::Launch({m['config']}).run({m['kernel']}{sep}"

    out, n = _LAUNCH.subn(repl, source)
    if n == 0 or '<<<' in out:
        raise RuntimeError(f'{KERNEL.name}: expected <<<...>>> kernel launches to rewrite')
    return out


def mutate(source: str, mutations: dict[str, str]) -> str:
    for pattern, replacement in mutations.items():
        count = source.count(pattern)
        if count != 1:
            raise RuntimeError(f'mutation pattern {pattern!r} occurs {count} times in '
                               f'{KERNEL.name} (expected once): update the test')
        source = source.replace(pattern, replacement)
    return source


def compiler() -> str | None:
    return shutil.which('g++')


def build(out_dir: Path, mutations: dict[str, str] | None = None) -> Path:
    """Compile the (possibly mutated) kernel file with the harness into a shared library."""
    source = rewrite_launches(mutate(KERNEL.read_text(), mutations or {}))
    key = hashlib.sha256(
        (source + (HERE / 'harness.cpp').read_text() +
         ''.join(p.read_text() for p in sorted((HERE / 'include').glob('*.h'))) +
         (CSRC / 'common' / 'dcnv3_math.h').read_text() +
         (CSRC / 'cuda' / 'dcnv3_cuda_kernel.h').read_text()).encode()).hexdigest()[:16]
    work = out_dir / key
    lib = work / 'libdcnv3_cuda_host.so'
    if lib.exists():
        return lib
    work.mkdir(parents=True, exist_ok=True)
    (work / 'kernel_host.cc').write_text(source)
    cmd = [compiler() or 'g++', '-std=c++20', '-O2', '-fPIC', '-shared', '-pthread', '-Wall',
           '-Werror', '-Wno-unused-function', f'-I{HERE / "include"}', f'-I{CSRC / "cuda"}',
           f'-I{work}', str(HERE / 'harness.cpp'), '-o', str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f'host build of {KERNEL.name} failed:\n{proc.stderr[-4000:]}')
    return lib


@dataclass
class LaunchMode:
    """How the emulated launches run: OS threads, a cap on the blocks (the grid-stride loops
    then wrap), reversed block order."""

    name: str = 'plain'
    os_threads: int = 2
    max_blocks: int = 0
    reverse: bool = False


class HostKernels:
    """The CUDA launchers ``launch_forward``/``launch_backward`` run on CPU threads."""

    def __init__(self, lib: Path):
        self.lib = ctypes.CDLL(str(lib))
        p, i64p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)
        self.lib.dcnv3_host_forward.argtypes = [ctypes.c_int, p, p, p, p, i64p, ctypes.c_double]
        self.lib.dcnv3_host_backward.argtypes = [ctypes.c_int, p, p, p, p, p, p, p, i64p,
                                                 ctypes.c_double]
        self.lib.cuda_host_configure.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_int,
                                                 ctypes.c_int]
        self.lib.cuda_host_last_launch.argtypes = [i64p]
        self.lib.cuda_host_try_launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_int64]

    def configure(self, mode: LaunchMode, dry_run: bool = False) -> None:
        self.lib.cuda_host_configure(mode.os_threads, mode.max_blocks, int(mode.reverse),
                                     int(dry_run))

    def last_launch(self) -> dict[str, tuple[int, ...] | int]:
        out = (ctypes.c_int64 * 8)()
        self.lib.cuda_host_last_launch(out)
        return dict(grid=tuple(out[0:3]), block=tuple(out[3:6]), shared_mem=out[6],
                    launches=out[7])

    def try_launch(self, grid: tuple[int, int, int], block: tuple[int, int, int],
                   shared_mem: int = 0) -> int:
        return self.lib.cuda_host_try_launch(*grid, *block, shared_mem)

    @staticmethod
    def _ints(args: tuple, batch: int, height: int, width: int):
        (kh, kw, sh, sw, ph, pw, dh, dw, g, gc, scale, remove_center) = args
        ints = (ctypes.c_int64 * 14)(batch, height, width, kh, kw, sh, sw, ph, pw, dh, dw, g, gc,
                                     int(remove_center))
        return ints, float(scale)

    def forward(self, input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                args: tuple, mode: LaunchMode | None = None) -> torch.Tensor:
        mode = mode or LaunchMode()
        n, h, w, c = input.shape
        ho, wo = offset.shape[1:3]
        # NaN-filled: an element the kernel never writes fails every comparison.
        out = torch.full((n, ho, wo, c), float('nan'), dtype=input.dtype)
        ints, scale = self._ints(args, n, h, w)
        self.configure(mode)
        err = self.lib.dcnv3_host_forward(DTYPES[input.dtype], input.data_ptr(),
                                          offset.data_ptr(), mask.data_ptr(), out.data_ptr(),
                                          ints, scale)
        if err != 0:
            raise RuntimeError(f'emulated forward launch failed with cudaError {err}')
        return out

    def backward(self, grad_output: torch.Tensor, input: torch.Tensor, offset: torch.Tensor,
                 mask: torch.Tensor, args: tuple,
                 mode: LaunchMode | None = None) -> tuple[torch.Tensor, ...]:
        mode = mode or LaunchMode()
        n, h, w, _ = input.shape
        reduced = input.dtype in (torch.float16, torch.bfloat16)
        # The launcher's contract (dcnv3_cuda.cpp): a zeroed accumulator, float32 for
        # half/bfloat16, cast back once; grad_offset/grad_mask are written in full.
        acc = torch.zeros(input.shape, dtype=torch.float32 if reduced else input.dtype)
        grad_offset = torch.full_like(offset, float('nan'))
        grad_mask = torch.full_like(mask, float('nan'))
        ints, scale = self._ints(args, n, h, w)
        self.configure(mode)
        err = self.lib.dcnv3_host_backward(DTYPES[input.dtype], grad_output.data_ptr(),
                                           input.data_ptr(), offset.data_ptr(), mask.data_ptr(),
                                           acc.data_ptr(), grad_offset.data_ptr(),
                                           grad_mask.data_ptr(), ints, scale)
        if err != 0:
            raise RuntimeError(f'emulated backward launch failed with cudaError {err}')
        return acc.to(input.dtype), grad_offset, grad_mask

    def dry_run_forward(self, shape_args: tuple, batch: int, height: int,
                        width: int) -> dict[str, tuple[int, ...] | int]:
        """Launch configuration the forward computes for a (possibly huge) call; runs nothing."""
        ints, scale = self._ints(shape_args, batch, height, width)
        self.configure(LaunchMode(), dry_run=True)
        null = ctypes.c_void_p(0)
        err = self.lib.dcnv3_host_forward(DTYPES[torch.float32], null, null, null, null, ints,
                                          scale)
        self.configure(LaunchMode())
        return dict(self.last_launch(), error=err)

    def dry_run_backward(self, shape_args: tuple, batch: int, height: int,
                         width: int) -> dict[str, tuple[int, ...] | int]:
        ints, scale = self._ints(shape_args, batch, height, width)
        self.configure(LaunchMode(), dry_run=True)
        null = ctypes.c_void_p(0)
        err = self.lib.dcnv3_host_backward(DTYPES[torch.float32], null, null, null, null, null,
                                           null, null, ints, scale)
        self.configure(LaunchMode())
        return dict(self.last_launch(), error=err)
