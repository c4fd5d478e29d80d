# Cascade Mask R-CNN + InternImage-XL (FPN) on COCO 2017, 1x schedule (12 epochs, single scale).
# Paper (COCO val2017, Cascade Mask R-CNN, IN-22K pretrained, XL 1x): box AP 55.3, mask AP 48.1,
#   387M params, 1782G FLOPs at 1280x800.
# Official: detection/configs/coco/cascade_internimage_xl_fpn_1x_coco.py (official_configs.md
#   §4.3).
# Backbone: the official ImageNet-22K (192->384) checkpoint internimage_xl_22k_192to384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/cascade-mask-rcnn_internimage_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='xl',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))

