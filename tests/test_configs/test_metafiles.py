"""configs/*/metafile.yml and model-index.yml (what `mim` reads): one entry per paper config,
with the parameters of the model the config builds, the paper's metrics and the official
release URL of its weights."""
from __future__ import annotations

import pytest
import yaml

from internimage_mm.apis import build_model

from ..conftest import REPO

TASKS = ('classification', 'detection', 'segmentation')
RELEASES = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'


def _metafile(task: str) -> dict:
    return yaml.safe_load((REPO / 'configs' / task / 'metafile.yml').read_text())


def test_model_index_imports_every_metafile():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    assert index['Import'] == [f'configs/{t}/metafile.yml' for t in TASKS]


@pytest.mark.parametrize('task', TASKS)
def test_every_paper_config_has_one_entry(task):
    models = _metafile(task)['Models']
    names = [m['Name'] for m in models]
    configs = sorted(p.stem for p in (REPO / 'configs' / task).glob('*.py')
                     if 'synthetic' not in p.stem)
    assert sorted(names) == configs
    for m in models:
        assert m['Config'] == f'configs/{task}/{m["Name"]}.py'
        assert m['Weights'].startswith(RELEASES) and m['Weights'].endswith('.pth')
        assert m['Results'] and all(r['Metrics'] for r in m['Results'])
        assert m['In Collection'] == 'InternImage'


@pytest.mark.parametrize('model', [m for t in TASKS for m in _metafile(t)['Models']],
                         ids=lambda m: m['Name'])
def test_parameters_are_those_of_the_built_model(model):
    built = build_model(str(REPO / model['Config']), pretrained=False, device='meta')
    assert model['Metadata']['Parameters'] == sum(p.numel() for p in built.parameters())
