# Cascade Mask R-CNN + InternImage-L (FPN) on COCO 2017, 1x schedule (12 epochs, single scale).
# Paper (COCO val2017, Cascade Mask R-CNN, IN-22K pretrained, L 1x): box AP 54.9, mask AP 47.7,
#   277M params, 1399G FLOPs at 1280x800.
# Official: detection/configs/coco/cascade_internimage_l_fpn_1x_coco.py (official_configs.md
#   §4.3).
# Backbone: the official ImageNet-22K (192->384) checkpoint internimage_l_22k_192to384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/cascade-mask-rcnn_internimage_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth')),
    neck=dict(in_channels=[160, 320, 640, 1280]))

