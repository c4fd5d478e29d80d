# UperNet + InternImage-S on ADE20K, crop 512x512, 160k iterations.
# Paper (ADE20K val, UperNet, S): mIoU 50.1 single-scale / 50.9 multi-scale, 80M params,
#   1017G FLOPs at 512x2048.
# Official: segmentation/configs/ade20k/upernet_internimage_s_512_160k_ade20k.py
#   (official_configs.md §1.2, §5.2).
# Total batch 16 = 8 GPUs x 2 images (bash tools/dist_train.sh CONFIG 8); lr is not rescaled for
#   other GPU counts unless --auto-scale-lr is given.
# Backbone: the official ImageNet-1K checkpoint internimage_s_1k_224.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
# Test: python tools/test.py CONFIG CKPT (single scale) or ... --tta (multi-scale + flip).
_base_ = [
    './_base_/upernet_internimage_160k.py',
    './_base_/ade20k_internimage_512x512.py',
]

model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        arch='s',
        layer_scale=1.0,
        drop_path_rate=0.3,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_s_1k_224.pth')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    optimizer=dict(lr=6e-5),
    paramwise_cfg=dict(layer_decay_rate=1.0))
