# Cascade Mask R-CNN + InternImage-L (FPN) on COCO 2017, 1x schedule (12 epochs, single scale).
# Paper (COCO val2017, Cascade Mask R-CNN, IN-22K pretrained, L 1x): box AP 54.9, mask AP 47.7,
#   277M params, 1399G FLOPs at 1280x800.
# Official: detection/configs/coco/cascade_internimage_l_fpn_1x_coco.py (official_configs.md
#   §4.3).
# Backbone from the ImageNet-22K (192->384) checkpoint internimage_l_22k_192to384.pth (put it in
#   checkpoints/ or override model.backbone.init_cfg.checkpoint with --cfg-options).
_base_ = './_base_/cascade-mask-rcnn_internimage_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        offset_scale=2.0,
        post_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/internimage_l_22k_192to384.pth')),
    neck=dict(in_channels=[160, 320, 640, 1280]))

# Layer decay 0.94 (set in the base) over num_layers + 2 = 39 layer ids.
optim_wrapper = dict(paramwise_cfg=dict(num_layers=37, depths=[5, 5, 22, 5]))
