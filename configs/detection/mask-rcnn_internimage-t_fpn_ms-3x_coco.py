# Mask R-CNN + InternImage-T (FPN) on COCO 2017, 3x schedule (36 epochs) with multi-scale
#   DETR-style augmentation.
# Paper (COCO val2017, Mask R-CNN, T 3x+MS): box AP 49.1, mask AP 43.7, 49M params, 270G FLOPs at
#   1280x800.
# Official: detection/configs/coco/mask_rcnn_internimage_t_fpn_3x_coco.py (official_configs.md
#   §4.2).
# Backbone from the ImageNet-1K checkpoint internimage_t_1k_224.pth (put it in checkpoints/ or
#   override model.backbone.init_cfg.checkpoint with --cfg-options).
_base_ = './_base_/mask-rcnn_internimage_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        arch='t',
        drop_path_rate=0.2,
        offset_scale=1.0,
        post_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/internimage_t_1k_224.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(paramwise_cfg=dict(num_layers=30, depths=[4, 4, 18, 4]))
