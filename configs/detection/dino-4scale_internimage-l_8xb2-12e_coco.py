# DINO (4 scales) + InternImage-L on COCO 2017, 12 epochs, multi-scale DETR-style augmentation.
# Paper (COCO, DINO, L, IN-22K pretrained): box AP 57.6 (val), 241M params.
# Official: detection/configs/coco/dino_4scale_internimage_l_1x_coco_0.1x_backbone_lr.py
#   (official_configs.md §4.4; the layer-wise-lr sibling differs only in the optimizer).
# Backbone: the official ImageNet-22K (192->384) checkpoint internimage_l_22k_192to384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/dino-4scale_internimage_1x_coco.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        layer_scale=1.0,
        with_cp=False,
        init_cfg=dict(
            type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth')),
    neck=dict(in_channels=[320, 640, 1280]),
    test_cfg=dict(max_per_img=300))

# AdamW lr 1e-4, wd 0.05 on every parameter (norms and biases included), backbone lr x0.1:
# mmengine's default constructor with custom_keys (kept from mmdet's DINO config), grad clip 0.1.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
