# Mask R-CNN + InternImage-T (FPN) on COCO 2017, 1x schedule (12 epochs, single scale).
# Paper (COCO val2017, Mask R-CNN, T 1x): box AP 47.2, mask AP 42.5, 49M params, 270G FLOPs at
#   1280x800.
# Official: detection/configs/coco/mask_rcnn_internimage_t_fpn_1x_coco.py (official_configs.md
#   §4.2).
# Backbone: the official ImageNet-1K checkpoint internimage_t_1k_224.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/mask-rcnn_internimage_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='t',
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))

