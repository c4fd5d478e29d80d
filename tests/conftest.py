"""Shared fixtures and markers.

Markers: ``gpu`` (needs CUDA; skipped without one), ``slow`` (learning runs; excluded from
``make test``, run by ``make test-slow``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'


def load_tool(relpath: str) -> ModuleType:
    """A script under ``tools/`` (e.g. ``'analysis_tools/get_flops.py'``) imported as a module,
    so that tests call its ``main``/functions in-process."""
    path = REPO / 'tools' / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason='needs a CUDA GPU (torch.cuda.is_available() is False)')
    if not torch.cuda.is_available():
        for item in items:
            if 'gpu' in item.keywords:
                item.add_marker(skip_gpu)


def _default_scope_class():
    # The operator tests also run where only torch is installed (make gpu-check on a bare CUDA
    # machine): there is no mmengine scope to isolate.
    try:
        from mmengine.registry import DefaultScope
    except ImportError:
        return None
    return DefaultScope


@pytest.fixture(scope='session')
def _initial_default_scopes():
    scope = _default_scope_class()
    return None if scope is None else dict(scope._instance_dict)


@pytest.fixture(autouse=True)
def isolated_default_scope(_initial_default_scopes):
    """mmengine's default scope is process-global (the latest DefaultScope instance): a test or
    fixture that sets it (e.g. ``init_default_scope('mmseg')``) must not decide which registry
    later tests build from. After every test only the scopes of the session start remain."""
    yield
    scope = _default_scope_class()
    if scope is not None and _initial_default_scopes is not None:
        scope._instance_dict.clear()
        scope._instance_dict.update(_initial_default_scopes)


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    """``../shared`` beside the checkout (goldens and specs); tests skip clearly without it."""
    if not SHARED.is_dir():
        pytest.skip(f'{SHARED} not found: the golden/spec files live in ../shared beside the repo')
    return SHARED
