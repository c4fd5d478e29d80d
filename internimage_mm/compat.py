"""Workarounds for the pinned OpenMMLab stack on a CPU-only torch, in one place.

Each fix is applied by :func:`apply` (called on ``import internimage_mm``) only where the
running environment has the problem (detected, not assumed), once, and is logged at debug level.
Installed packages are never edited.

(a) torchvision: the registry's torchvision 0.28.0 is a CUDA build. With a CPU torch its C++
    extension cannot load, and ``import torchvision`` fails in ``torchvision/_meta_registrations``
    with ``operator torchvision::nms does not exist``. mmpretrain.models/datasets import it.
    Defining the ``torchvision::nms``/``qnms`` schemas (no kernels) before torchvision's first
    import makes its Python parts (transforms, datasets) usable. Calling ``torchvision.ops.nms``
    still fails, which nothing on our paths does (mmdet/mmcv have their own NMS).
(b) CPU distributed runs (gloo): ``mmengine.dist.init_dist`` calls ``torch.cuda.set_device``
    unconditionally (and the slurm path divides by ``torch.cuda.device_count()``), and the
    Runner wraps models in DDP with ``device_ids=[local_rank]``, which DDP rejects for CPU
    modules. :func:`prepare_cpu_distributed` runs mmengine's launcher with those calls
    neutralised and gloo, before the Runner (which then skips ``init_dist``), and sets
    ``model_wrapper_cfg.device_ids=None``.
(c) mmdet pulls ``imaug`` (numba, scikit-image) and pins opencv<4.13, which pins numpy to 2.2.x:
    nothing to patch, the versions are pinned in requirements/constraints.txt.
(d) mmengine maps the ``mmseg::`` config scope to the distribution ``mmsegmentation``; the onedl
    release is ``onedl-mmsegmentation``, so ``_base_ = 'mmseg::...'`` fails with
    "mmsegmentation is not installed". Pointing ``MODULE2PACKAGE['mmseg']`` at the import name
    lets mmengine find it by module spec.
(e) bfloat16 autocast on the CPU (``tools/train.py --amp`` without a GPU): mmcv's compiled CPU
    kernels for NMS and RoIAlign take float32/float64 only and fail with "expected scalar type
    Float but found BFloat16" inside every two-stage detector. :func:`patch_mmcv_cpu_kernels`
    routes those kernels through float32 for low-precision CPU tensors (outputs written in
    place are copied back), which is what autocast does for torch's own float32-only ops. It
    is a proxy that passes float32/float64 calls straight through, installed where no CUDA
    device is available.
(f) mmpretrain's inferencers (``ImageClassificationInferencer``, ...) build their pipeline and
    visualizer in whatever default scope is current: after a ``DetInferencer`` or
    ``MMSegInferencer`` in the same process (a notebook using both) that is mmdet's or mmseg's,
    and ``ResizeEdge is not in the mmdet::transform registry``. mmengine's own inferencers set
    their scope; where mmpretrain's do not, :func:`patch_mmpretrain_inferencer_scope` runs
    their ``__init__``/``__call__`` in the ``mmpretrain`` scope.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
import sys
from pathlib import Path
from typing import Any

import torch

_torchvision_lib: torch.library.Library | None = None


def _torchvision_is_cuda_build() -> bool:
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return False
    version_file = Path(next(iter(spec.submodule_search_locations))) / 'version.py'
    try:
        text = version_file.read_text()
    except OSError:
        return False
    # e.g. "__version__ = '0.28.0+cu130'" (the local tag names the CUDA it was built for)
    return re.search(r"^__version__\s*=\s*'[^']*\+cu\d+'", text, re.M) is not None


def patch_torchvision_ops() -> bool:
    """(a) Define torchvision's op schemas when its CUDA extension cannot load on CPU torch.

    Returns True when the schemas were defined by this call.
    """
    global _torchvision_lib
    if _torchvision_lib is not None or 'torchvision' in sys.modules:
        return False
    if torch.version.cuda is not None or not _torchvision_is_cuda_build():
        return False
    if hasattr(torch.ops.torchvision, 'nms'):  # already defined (by torchvision or us)
        return False
    lib = torch.library.Library('torchvision', 'DEF')
    lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _torchvision_lib = lib  # keep alive: the schemas are removed when the object is freed
    return True


def patch_mmseg_config_scope() -> bool:
    """(d) Let ``mmseg::`` config paths resolve with the onedl-mmsegmentation distribution.

    Returns True when the mapping was changed by this call."""
    try:
        from mmengine.config import utils as config_utils
    except ImportError:
        return False
    if importlib.util.find_spec('mmseg') is None:
        return False
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        distribution(config_utils.MODULE2PACKAGE.get('mmseg', 'mmseg'))
    except PackageNotFoundError:
        config_utils.MODULE2PACKAGE['mmseg'] = 'mmseg'
        return True
    return False


@contextlib.contextmanager
def _cuda_device_calls_disabled():
    """``torch.cuda.set_device`` as a no-op and ``device_count`` as 1, for mmengine's launchers."""
    set_device, device_count = torch.cuda.set_device, torch.cuda.device_count
    torch.cuda.set_device = lambda *args, **kwargs: None
    torch.cuda.device_count = lambda: 1
    try:
        yield
    finally:
        torch.cuda.set_device, torch.cuda.device_count = set_device, device_count


def prepare_cpu_distributed(cfg) -> bool:
    """(b) Make an mmengine Runner config train with torch.distributed on CPU (gloo).

    Call before ``Runner.from_cfg`` when the launcher is not ``none`` and no GPU is present. It
    runs mmengine's own launcher path (``init_dist('pytorch' | 'slurm' | 'mpi')``: the env://
    variables, SLURM_* parsing, ``scontrol``) with its CUDA device calls neutralised and the gloo
    backend, so the Runner finds the process group initialised; and it makes the DDP wrapper
    treat the model as a CPU module (``device_ids=None``). Returns True when it did both.
    """
    import torch.distributed as dist
    from mmengine.dist import init_dist
    if torch.cuda.is_available() or cfg.get('launcher', 'none') == 'none':
        return False
    env_cfg = dict(cfg.get('env_cfg') or {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    if not dist.is_initialized():
        with _cuda_device_calls_disabled():
            init_dist(cfg.launcher, **dist_cfg)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    return True


#: mmcv.ops modules -> their ``ext_module`` kernels with float32-only CPU code, each with the
#: positions of the arguments it writes its results into
_MMCV_FLOAT32_CPU_KERNELS = {
    'mmcv.ops.nms': {'nms': ()},
    'mmcv.ops.roi_align': {'roi_align_forward': (2, 3, 4), 'roi_align_backward': (4, )},
}
_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _is_low_precision_cpu(a: Any) -> bool:
    return isinstance(a, torch.Tensor) and a.device.type == 'cpu' and a.dtype in _LOW_PRECISION


def _upcast(a: Any) -> Any:
    """``a`` in float32 if it is a bfloat16/float16 CPU tensor, else ``a`` itself."""
    return a.float() if _is_low_precision_cpu(a) else a


class _Float32CpuKernels:
    """(e) Proxy of mmcv's ``_ext`` module: the listed kernels run in float32 when a CPU
    argument is bfloat16/float16 (those arguments are upcast, so that they also match the
    float32 ones autocast leaves, e.g. RoIs); in-place outputs get the float32 results back in
    their own dtype. RoIAlign's max mode is refused (its argmax outputs are coordinates)."""

    def __init__(self, ext: Any, kernels: dict[str, tuple[int, ...]]) -> None:
        self._ext, self._kernels = ext, kernels

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._ext, name)
        if name not in self._kernels:
            return fn
        outputs = self._kernels[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            if not any(map(_is_low_precision_cpu, (*args, *kwargs.values()))):
                return fn(*args, **kwargs)

            if name == 'roi_align_forward' and kwargs.get('pool_mode') == 0:
                # max mode stores sample coordinates in low-precision argmax tensors, which the
                # backward would read back rounded
                raise RuntimeError("mmcv RoIAlign pool_mode='max' does not support bfloat16/"
                                   "float16 CPU tensors; use pool_mode='avg' (mmdet's default)"
                                   ' or train without --amp')

            args32 = [_upcast(a) for a in args]
            result = fn(*args32, **{k: _upcast(v) for k, v in kwargs.items()})
            for i in outputs:
                if i < len(args) and args32[i] is not args[i]:
                    args[i].copy_(args32[i])
            return result

        setattr(self, name, call)  # built once: later lookups skip __getattr__
        return call


def patch_mmcv_cpu_kernels() -> bool:
    """(e) Let mmcv's NMS and RoIAlign CPU kernels take bfloat16/float16 tensors (via float32).

    Idempotent; returns True when this call patched something."""
    patched = False
    for module_name, kernels in _MMCV_FLOAT32_CPU_KERNELS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        ext = getattr(module, 'ext_module', None)
        if ext is None or isinstance(ext, _Float32CpuKernels):
            continue
        module.ext_module = _Float32CpuKernels(ext, kernels)
        patched = True
    return patched


def patch_mmpretrain_inferencer_scope() -> bool:
    """(f) Run mmpretrain's inferencers in their own scope when they do not do so themselves.

    Returns True when this call patched them."""
    if importlib.util.find_spec('mmpretrain') is None:
        return False
    import functools
    import inspect

    from mmengine.registry import DefaultScope
    from mmpretrain.apis import base
    if getattr(base.BaseInferencer, '_internimage_scoped', False):
        return False
    if 'scope' in inspect.getsource(base.BaseInferencer.__init__):
        return False  # a release that handles its scope

    def scoped(fn):
        @functools.wraps(fn)
        def call(self, *args, **kwargs):
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                return fn(self, *args, **kwargs)
        return call

    pending = [base.BaseInferencer]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for name in ('__init__', '__call__'):
            if name in vars(cls):
                setattr(cls, name, scoped(vars(cls)[name]))
    base.BaseInferencer._internimage_scoped = True
    return True


def apply() -> list[str]:
    """Apply the import-time fixes ((a), (d), (e), (f)) that this environment needs, once each, and
    log them at debug level; (b) is per run. On a CUDA torch with a working torchvision and the
    upstream mmsegmentation distribution nothing is patched. Returns the fixes applied now."""
    applied = []
    if patch_torchvision_ops():
        applied.append('(a) torchvision op schemas for its CUDA build on a CPU torch')
    if patch_mmseg_config_scope():
        applied.append("(d) mmseg:: config scope -> the onedl-mmsegmentation distribution")
    # (e) matters where mixed precision runs on the CPU: a machine without a CUDA device.
    if not torch.cuda.is_available() and patch_mmcv_cpu_kernels():
        applied.append('(e) mmcv NMS/RoIAlign CPU kernels through float32 for bfloat16/float16')
    if patch_mmpretrain_inferencer_scope():
        applied.append("(f) mmpretrain's inferencers run in the mmpretrain scope")
    if applied:
        from mmengine.logging import print_log
        for fix in applied:
            print_log(f'internimage_mm.compat: applied {fix}', logger='current',
                      level=logging.DEBUG)
    return applied
