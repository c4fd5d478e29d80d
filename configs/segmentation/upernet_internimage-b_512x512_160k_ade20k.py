# UperNet + InternImage-B on ADE20K, crop 512x512, 160k iterations.
# Paper (ADE20K val, UperNet, B): mIoU 50.8 single-scale / 51.3 multi-scale, 128M params,
#   1185G FLOPs at 512x2048.
# Official: segmentation/configs/ade20k/upernet_internimage_b_512_160k_ade20k.py
#   (official_configs.md §1.2, §5.2).
# Total batch 16 = 8 GPUs x 2 images (bash tools/dist_train.sh CONFIG 8); lr is not rescaled for
#   other GPU counts unless --auto-scale-lr is given.
# Backbone from the ImageNet-1K checkpoint internimage_b_1k_224.pth (put it
#   in checkpoints/ or override model.backbone.init_cfg.checkpoint with --cfg-options).
# Test: python tools/test.py CONFIG CKPT (single scale) or ... --tta (multi-scale + flip).
_base_ = [
    './_base_/upernet_internimage_160k.py',
    './_base_/ade20k_internimage_512x512.py',
]

model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        arch='b',
        offset_scale=1.0,
        post_norm=True,
        layer_scale=1.0,
        drop_path_rate=0.4,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/internimage_b_1k_224.pth')),
    decode_head=dict(in_channels=[112, 224, 448, 896]),
    auxiliary_head=dict(in_channels=448))

optim_wrapper = dict(
    optimizer=dict(lr=6e-5),
    paramwise_cfg=dict(num_layers=33, layer_decay_rate=1.0, depths=[4, 4, 21, 4]))
