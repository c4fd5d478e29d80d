# DINO (4 scales) + InternImage-T on COCO 2017, 12 epochs, multi-scale DETR-style augmentation.
# Paper (COCO, DINO, T, IN-1K pretrained): box AP 53.9 (val), 49M params.
# Official: detection/configs/coco/dino_4scale_internimage_t_1x_coco_layer_wise_lr.py
#   (official_configs.md §4.4).
# Backbone: the official ImageNet-1K checkpoint internimage_t_1k_224.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = './_base_/dino-4scale_internimage_1x_coco.py'

model = dict(
    backbone=dict(
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth')),
    neck=dict(in_channels=[128, 256, 512]),
    test_cfg=dict(max_per_img=100))

# AdamW lr 1e-4, wd 1e-4, layer decay 0.9 over num_layers + 2 = 32 ids (DINO's level_embed gets
# id 0, like the stem), grad clip 0.1 (L2). Replaces mmdet's 0.1x backbone lr.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rule='detection', layer_decay_rate=0.9))
