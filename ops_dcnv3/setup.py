"""Build of the DCNv3 operator (``ops_dcnv3._C``).

The C++ CPU kernels are always built. The CUDA kernels are added when a CUDA build of torch and
a CUDA toolkit are both present (or ``FORCE_CUDA=1``); ``DCNV3_CPU_ONLY=1`` disables them.
Install without build isolation so the extension is compiled against the torch you run:
``pip install --no-build-isolation -e ops_dcnv3``.
"""
import os
from pathlib import Path

from setuptools import setup

here = Path(__file__).parent


def _extension():
    import torch
    from torch.utils import cpp_extension

    cpu_sources = ['csrc/dcnv3.cpp', 'csrc/cpu/dcnv3_cpu.cpp', 'csrc/cpu/gelu_cpu.cpp',
                   'csrc/cpu/dwconv_ln_cpu.cpp', 'csrc/cpu/layer_norm_cpu.cpp']
    # No FP traps or errno (as torch itself) lets GCC vectorise floor() and selects;
    # reassociation lets it reduce the channel dot products as a tree instead of in order.
    # C++20 (std::atomic_ref) stated here: older torch releases default to C++17. -Wno-psabi: the
    # note that wide vector arguments change the ABI concerns only our always-inline helpers.
    # -fno-wrapv undoes Python's -fwrapv (its CFLAGS, which setuptools passes first): with
    # signed overflow defined, GCC keeps the kernels' int table indices 32-bit and re-extends
    # them at every access (InternImage-T stage-1 backward 1.15x the time).
    cxx_flags = ['-std=c++20', '-O3', '-fopenmp', '-fno-trapping-math', '-fno-math-errno',
                 '-fassociative-math', '-fno-signed-zeros', '-fno-wrapv', '-Wno-psabi']
    with_cuda = (torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None) or \
        os.environ.get('FORCE_CUDA') == '1'
    if os.environ.get('DCNV3_CPU_ONLY') == '1':
        with_cuda = False
    if with_cuda:
        return cpp_extension.CUDAExtension(
            'ops_dcnv3._C',
            cpu_sources + ['csrc/cuda/dcnv3_cuda.cpp', 'csrc/cuda/dcnv3_cuda_kernel.cu'],
            define_macros=[('WITH_CUDA', None)],
            extra_compile_args={'cxx': cxx_flags, 'nvcc': ['-O3']},
            extra_link_args=['-fopenmp'])
    return cpp_extension.CppExtension(
        'ops_dcnv3._C', cpu_sources, extra_compile_args={'cxx': cxx_flags},
        extra_link_args=['-fopenmp'])


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


setup(ext_modules=[_extension()], cmdclass=_cmdclass())
