"""Draw a model's predictions on your own images (detection, segmentation or classification:
the config decides).

    python tools/demo/image_demo.py IMAGE_OR_FOLDER CONFIG [CHECKPOINT] [--out-dir DIR]
    python tools/demo/image_demo.py demo.jpg \\
        configs/detection/mask-rcnn_internimage-t_fpn_8xb2-1x_coco.py \\
        https://huggingface.co/OpenGVLab/InternImage/resolve/main/mask_rcnn_internimage_t_fpn_1x_coco.pth

CHECKPOINT may be ours or an official release (file or URL), which is converted in memory;
without one the model has random weights. Drawn predictions go to ``DIR/vis``, raw predictions
to ``DIR/preds``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mmengine.config import DictAction

from internimage_mm.apis.inference import infer_and_draw, init_inferencer, list_images


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('image', help='an image file or a folder of images')
    parser.add_argument('config', help='config file (its default_scope picks the task)')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint file or URL, ours or official (default: random weights)')
    parser.add_argument('--out-dir', default='outputs', help='where the drawings go')
    parser.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    args = parser.parse_args(argv)
    images = list_images(args.image)
    inferencer = init_inferencer(args.config, args.checkpoint, args.device, args.cfg_options)
    drawn = infer_and_draw(inferencer, images, args.out_dir)
    print(f'{len(drawn)} drawing(s) of {len(images)} image(s) in {args.out_dir}/vis')
    return 0


if __name__ == '__main__':
    sys.exit(main())
