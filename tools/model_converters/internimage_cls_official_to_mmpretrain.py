"""Convert an official InternImage classification checkpoint to mmpretrain's layout.

    python tools/model_converters/internimage_cls_official_to_mmpretrain.py \
        internimage_t_1k_224.pth internimage-t_in1k.pth [--key model_ema]

The result loads into ``ImageClassifier(backbone=InternImage(...), head=InternImageClsHead(...))``
(or ``InternImageAttnPoolHead`` for H). Not needed to use an official checkpoint: ``load_from``
and ``tools/test.py`` convert it in memory, and the backbone takes it as it is with
``init_cfg=dict(type='Pretrained', checkpoint=<official .pth or URL>)``. Exit status: 0 written,
1 not.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from internimage_mm.apis.convert import converter_cli
from internimage_mm.converters import CLASSIFIER


def main(argv: Sequence[str] | None = None) -> int:
    return converter_cli(__doc__.splitlines()[0], {'internimage': CLASSIFIER}, argv)


if __name__ == '__main__':
    sys.exit(main())
