# Cascade Mask R-CNN + InternImage-XL (FPN) on COCO 2017, 3x schedule (36 epochs) with
#   multi-scale DETR-style augmentation.
# Paper (COCO val2017, Cascade Mask R-CNN, IN-22K pretrained, XL 3x+MS): box AP 56.2, mask AP
#   48.8, 387M params, 1782G FLOPs at 1280x800.
# Official: detection/configs/coco/cascade_internimage_xl_fpn_3x_coco.py (official_configs.md
#   §4.3).
# Official batch: 64 (2 images x 32 GPUs) at lr 2e-4, with ExpMomentum EMA; use --auto-scale-lr
#   on fewer GPUs.
# Backbone from the ImageNet-22K (192->384) checkpoint internimage_xl_22k_192to384.pth (put it in
#   checkpoints/ or override model.backbone.init_cfg.checkpoint with --cfg-options).
_base_ = './_base_/cascade-mask-rcnn_internimage_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        arch='xl',
        drop_path_rate=0.6,  # the official XL 3x raises it from 0.4
        offset_scale=2.0,
        post_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/internimage_xl_22k_192to384.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))

# Layer decay 0.90 (set in the base) over num_layers + 2 = 41 layer ids.
optim_wrapper = dict(paramwise_cfg=dict(num_layers=39, depths=[5, 5, 24, 5]))
