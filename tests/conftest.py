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


DATA = REPO / 'tests' / 'data'


def data_file(relpath: str) -> Path:
    """A test-data file (``'golden/...'``, ``'spec/...'``): the copy in ``tests/data``, else
    ``../shared`` beside the checkout (large goldens not copied); skips with a message when
    neither has it."""
    for root in (DATA, SHARED):
        path = root / relpath
        if path.is_file():
            return path
    pytest.skip(f'{relpath} is neither in {DATA} nor in {SHARED} (large goldens are not copied '
                'into the repository)')


def load_json(relpath: str):
    """A JSON test-data file, e.g. ``load_json('spec/variants.json')``."""
    import json
    return json.loads(data_file(relpath).read_text())


@pytest.fixture
def log_records():
    """Records of mmengine's 'current' logger during the test."""
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1 (the only network these tests use), and torch's
    download cache moved into the test's tmp_path. Yields ``(folder, base_url)``."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / 'served'
    served.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    server = ThreadingHTTPServer(('127.0.0.1', 0),
                                 functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
