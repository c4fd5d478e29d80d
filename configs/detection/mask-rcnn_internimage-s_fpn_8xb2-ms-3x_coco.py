# Mask R-CNN + InternImage-S (FPN) on COCO 2017, 3x schedule (36 epochs) with multi-scale
#   DETR-style augmentation.
# Paper (COCO val2017, Mask R-CNN, S 3x+MS): box AP 49.7, mask AP 44.5, 69M params, 340G FLOPs at
#   1280x800.
# Official: detection/configs/coco/mask_rcnn_internimage_s_fpn_3x_coco.py (official_configs.md
#   §4.2).
# Backbone: the official ImageNet-1K checkpoint internimage_s_1k_224.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/mask-rcnn_internimage_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        arch='s',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth')),
    neck=dict(in_channels=[80, 160, 320, 640]))

