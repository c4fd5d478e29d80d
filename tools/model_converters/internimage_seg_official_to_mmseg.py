"""Convert an official InternImage segmentation checkpoint (mmseg 0.x era) to this toolbox's
mmseg 1.x models (configs/segmentation/).

    python tools/model_converters/internimage_seg_official_to_mmseg.py \
        upernet_internimage_t_512_160k_ade20k.pth upernet_internimage-t_ade20k.pth \
        --config configs/segmentation/upernet_internimage-t_8xb2-160k_ade20k-512x512.py

Not needed to use an official checkpoint (``tools/test.py`` and ``load_from`` convert it in
memory); use it to keep a converted copy. UperNet keys keep their names; the official
Mask2Former head's mmcv 1.x layer names (``attentions.N``/``ffns.N``) become mmdet 3.x's
(``self_attn``/``cross_attn``/``ffn``), per the table in
``internimage_mm/converters/segmentation.py``. The official ``meta.CLASSES``/``PALETTE`` become
``meta.dataset_meta``. Keys no rule maps (and, with ``--config``, keys missing, unexpected or of
another shape, e.g. the COCO-Stuff Mask2Former's 171-class ``cls_embed`` against an ADE20K
config) are listed and nothing is written, unless ``--allow-missing``. Exit status: 0 written,
1 not.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from internimage_mm.apis.convert import converter_cli
from internimage_mm.converters import SEGMENTORS


def main(argv: Sequence[str] | None = None) -> int:
    return converter_cli(__doc__.splitlines()[0], SEGMENTORS, argv)


if __name__ == '__main__':
    sys.exit(main())
