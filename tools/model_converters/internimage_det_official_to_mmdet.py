"""Convert an official InternImage detection checkpoint (mmdet 2.x era) to this toolbox's
mmdet 3.x models (configs/detection/).

    python tools/model_converters/internimage_det_official_to_mmdet.py \
        cascade_internimage_xl_fpn_3x_coco.pth cascade-mask-rcnn_internimage-xl.pth \
        --config configs/detection/cascade-mask-rcnn_internimage-xl_fpn_8xb2-ms-3x_coco.py

Not needed to use an official checkpoint (``tools/test.py`` and ``load_from`` convert it in
memory); use it to keep a converted copy. ``--arch`` (``mask-rcnn``, ``cascade`` or ``dino``)
is detected from the keys when omitted. With ``--config`` the result is also checked key for key
and shape for shape against the model that config builds (on the meta device: no memory, no
weights). Keys that no rename rule maps (and, with ``--config``, keys missing, unexpected or of
another shape) are listed by name and nothing is written, unless ``--allow-missing``. The rename
tables are in ``internimage_mm/converters/detection.py``. Exit status: 0 written, 1 not.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from internimage_mm.apis.convert import converter_cli
from internimage_mm.converters import DETECTORS


def main(argv: Sequence[str] | None = None) -> int:
    return converter_cli(__doc__.splitlines()[0], DETECTORS, argv)


if __name__ == '__main__':
    sys.exit(main())
