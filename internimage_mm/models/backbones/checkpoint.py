"""Loading checkpoints into an InternImage backbone (``init_cfg=dict(type='Pretrained')``).

Official classification checkpoints hold the backbone keys (``patch_embed.*``, ``levels.*``)
exactly as :class:`InternImage` names them; detector/segmentor checkpoints (official or ours)
hold them under ``backbone.``. Both load as they are, from a path or a URL.
"""
from __future__ import annotations

import logging
import os
import urllib.error
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

#: Leading key prefixes added by wrappers (DDP, EMA/Lightning-style holders); always stripped.
WRAPPER_PREFIXES = ('module.', 'model.')
#: Official classifier-only key prefixes (ignored, and reported, when loading a backbone).
CLASSIFIER_PREFIXES = ('conv_head.', 'head.', 'dcnv3_head_x4.', 'dcnv3_head_x3.',
                       'clip_projector.', 'fc_norm.')


@dataclass
class LoadReport:
    """What :func:`load_backbone_checkpoint` did with the keys.

    ``missing``: model keys absent from the checkpoint (left at their initial values);
    ``unexpected``: checkpoint keys the model does not have; ``ignored``: checkpoint keys that
    belong to other parts of a model on purpose (classifier heads, necks, detector heads).
    """
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def extract_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict in a checkpoint: its ``state_dict`` or ``model`` entry, or itself."""
    for key in ('state_dict', 'model'):
        inner = checkpoint.get(key) if isinstance(checkpoint, Mapping) else None
        if isinstance(inner, Mapping):
            return dict(inner)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint must be a mapping, got {type(checkpoint).__name__}')
    return dict(checkpoint)


def strip_wrapper_prefixes(state_dict: Mapping[str, Any],
                           prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> dict[str, Any]:
    """Remove leading ``module.``/``model.`` (repeatedly, in any order) from every key."""
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for p in prefixes:
                if key.startswith(p):
                    key, stripped = key[len(p):], True
        out[key] = value
    return out


def fetch_checkpoint(source: str | os.PathLike) -> str:
    """A local path of ``source``: the file itself, or an http(s) URL downloaded once into
    torch's hub cache (``$TORCH_HOME/hub/checkpoints``). Other URL schemes are returned as they
    are (mmengine's file backends read them). Errors name the file or URL; a failed download
    leaves no partial file."""
    source = str(source)
    if '://' not in source:
        if not os.path.isfile(source):
            raise FileNotFoundError(f'checkpoint {source} does not exist')
        return source
    if not source.startswith(('http://', 'https://')):
        return source
    cache = Path(torch.hub.get_dir()) / 'checkpoints'
    name = os.path.basename(urllib.parse.urlparse(source).path) or 'checkpoint.pth'
    dst = cache / name
    if not dst.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(source, str(dst), progress=False)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RuntimeError(f'cannot fetch checkpoint {source}: {e}') from e
    return str(dst)


def read_checkpoint(source: str | os.PathLike, map_location: str = 'cpu') -> Any:
    """Load a checkpoint file or URL, with an error that names the source when it does not
    exist or cannot be fetched."""
    return CheckpointLoader.load_checkpoint(fetch_checkpoint(source), map_location=map_location)


def _first(keys: list[str], n: int = 8) -> str:
    return ', '.join(keys[:n]) + (f', ... ({len(keys)} in all)' if len(keys) > n else '')


def load_backbone_checkpoint(module: nn.Module,
                             checkpoint: str | os.PathLike | Mapping[str, Any],
                             map_location: str = 'cpu',
                             prefix: str | None = None,
                             logger: str | logging.Logger | None = 'current') -> LoadReport:
    """Load an official (or mmpretrain/mmdet/mmseg) checkpoint into an InternImage backbone.

    Takes the checkpoint's ``state_dict`` or ``model`` entry (or the dict itself), strips the
    wrapper prefixes ``module.``/``model.``, then keeps the keys under ``prefix`` (default
    ``backbone.`` when any key has it; prefix removed) and reports the others as ignored.
    Official classifier keys (``conv_head.*``, ``head.*``, ...) are ignored too. Missing and
    unexpected keys are logged by name (warning). A key whose shape differs, or a checkpoint
    with no key of this backbone at all, raises a RuntimeError naming the keys: nothing is
    half-loaded silently.
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else 'checkpoint'
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_checkpoint(checkpoint, map_location)
    state_dict = strip_wrapper_prefixes(extract_state_dict(checkpoint))
    report = LoadReport()

    if prefix is None and any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'
    if prefix:
        selected = {}
        for key, value in state_dict.items():
            if key.startswith(prefix):
                selected[key[len(prefix):]] = value
            else:
                report.ignored.append(key)
        state_dict = selected

    own = module.state_dict()
    name = type(module).__name__
    to_load, mismatched = {}, []
    for key, value in state_dict.items():
        if key in own:
            if tuple(getattr(value, 'shape', ())) != tuple(own[key].shape):
                mismatched.append(f'{key}: checkpoint {tuple(getattr(value, "shape", ()))} '
                                  f'vs model {tuple(own[key].shape)}')
            to_load[key] = value
        elif not prefix and key.startswith(CLASSIFIER_PREFIXES):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    if mismatched:
        raise RuntimeError(f'{name}: {len(mismatched)} key(s) of {source} do not match the '
                           'model shape (a checkpoint of another size or variant?):\n  ' +
                           '\n  '.join(mismatched[:20]))
    if not to_load:
        keys = list(state_dict) or report.ignored
        raise RuntimeError(f'{name}: {source} holds no key of this backbone (another model?); '
                           f'its first keys: {_first(keys)}; the backbone expects e.g. '
                           f'{_first(list(own), 3)}')
    report.missing = [k for k in own if k not in to_load]
    module.load_state_dict(to_load, strict=False)

    print_log(f'{name}: loaded {len(to_load)}/{len(own)} keys from {source}', logger,
              logging.INFO)
    if report.ignored:
        print_log(f'{name}: ignored {len(report.ignored)} checkpoint key(s) of other model '
                  f'parts: {_first(report.ignored)}', logger, logging.INFO)
    if report.missing:
        print_log(f'{name}: missing key(s) in the checkpoint, left at their initial values: '
                  f'{report.missing}', logger, logging.WARNING)
    if report.unexpected:
        print_log(f'{name}: unexpected key(s) in the checkpoint, not loaded: '
                  f'{report.unexpected}', logger, logging.WARNING)
    return report
