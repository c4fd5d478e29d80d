# Mask R-CNN + InternImage-B (FPN) on COCO 2017, 1x schedule (12 epochs, single scale).
# Paper (COCO val2017, Mask R-CNN, B 1x): box AP 48.8, mask AP 44.0, 115M params, 501G FLOPs at
#   1280x800.
# Official: detection/configs/coco/mask_rcnn_internimage_b_fpn_1x_coco.py (official_configs.md
#   §4.2).
# Backbone: the official ImageNet-1K checkpoint internimage_b_1k_224.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/mask-rcnn_internimage_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='b',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_b_1k_224.pth')),
    neck=dict(in_channels=[112, 224, 448, 896]))

