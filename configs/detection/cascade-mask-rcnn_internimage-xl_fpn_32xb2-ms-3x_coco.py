# Cascade Mask R-CNN + InternImage-XL (FPN) on COCO 2017, 3x schedule (36 epochs) with
#   multi-scale DETR-style augmentation.
# Paper (COCO val2017, Cascade Mask R-CNN, IN-22K pretrained, XL 3x+MS): box AP 56.2, mask AP
#   48.8, 387M params, 1782G FLOPs at 1280x800.
# Official: detection/configs/coco/cascade_internimage_xl_fpn_3x_coco.py (official_configs.md
#   §4.3).
# Official batch: 64 (2 images x 32 GPUs) at lr 2e-4, with ExpMomentum EMA; use --auto-scale-lr
#   on fewer GPUs.
# Backbone: the official ImageNet-22K (192->384) checkpoint internimage_xl_22k_192to384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/cascade-mask-rcnn_internimage_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        arch='xl',
        drop_path_rate=0.6,  # the official XL 3x raises it from 0.4
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))

