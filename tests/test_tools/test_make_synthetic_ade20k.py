"""tools/misc/make_synthetic_ade20k.py: the ADE20K layout and label convention."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ..conftest import load_tool


def _tool():
    return load_tool('misc/make_synthetic_ade20k.py')


def test_layout_labels_and_sizes(tmp_path):
    tool = _tool()
    out = tool.make_synthetic_ade20k(tmp_path / 'ade', num_classes=3, train_images=7,
                                     val_images=4, sizes=[(96, 64), (64, 80)], seed=1)
    sizes, values = set(), set()
    for split, prefix, count in (('training', 'train', 7), ('validation', 'val', 4)):
        images = sorted((out / 'images' / split).glob('*.jpg'))
        labels = sorted((out / 'annotations' / split).glob('*.png'))
        assert [p.stem for p in images] == [p.stem for p in labels] == [
            f'ADE_{prefix}_{i:08d}' for i in range(1, count + 1)]
        for img_path, label_path in zip(images, labels):
            img, label = Image.open(img_path), Image.open(label_path)
            assert img.mode == 'RGB' and label.mode == 'L'
            assert img.size == label.size
            sizes.add(img.size)
            values |= set(np.unique(np.array(label)).tolist())
    assert sizes == {(96, 64), (64, 80)}
    # ADE20K convention: 0 = other/background, classes 1..K
    assert 0 in values and values <= {0, 1, 2, 3} and len(values) > 2
    assert (out / 'classes.txt').read_text().split() == ['circle', 'square', 'triangle']


def test_labels_match_the_drawn_colours(tmp_path):
    """Each class's pixels have its shape's colour: the set is learnable."""
    from internimage_mm.datasets.synthetic import SHAPES, semantic_image
    rng = np.random.default_rng(0)
    img, labels = semantic_image(rng, (128, 96), num_classes=4, max_shapes=5)
    assert img.shape == (96, 128, 3) and labels.shape == (96, 128)
    for k in np.unique(labels):
        if k == 0:
            continue
        mean = img[labels == k].reshape(-1, 3).mean(0)
        assert np.abs(mean - np.array(SHAPES[k - 1][1])).max() < 45, (k, mean)


def test_cli_and_bad_arguments(tmp_path, capsys):
    tool = _tool()
    tool.main([str(tmp_path / 'cli'), '--num-classes', '2', '--train-images', '2',
               '--val-images', '1', '--size', '64', '80x64'])
    assert 'wrote' in capsys.readouterr().out
    assert len(list((tmp_path / 'cli' / 'images' / 'training').glob('*.jpg'))) == 2
    assert tool.parse_size('80x64') == (80, 64) and tool.parse_size('64') == (64, 64)
    with pytest.raises(ValueError, match='WxH'):
        tool.parse_size('8x8')
    with pytest.raises(ValueError, match='num_classes'):
        tool.make_synthetic_ade20k(tmp_path / 'x', num_classes=99)
    with pytest.raises(ValueError, match='at least one image'):
        tool.make_synthetic_ade20k(tmp_path / 'x', train_images=0)
