# UperNet + InternImage-H on ADE20K, crop 896x896, 160k iterations.
# Paper (ADE20K val, UperNet, H): mIoU 59.9 single-scale / 60.3 multi-scale, 1.12B params,
#   3566G FLOPs at 896x896.
# Official: segmentation/configs/ade20k/upernet_internimage_h_896_160k_ade20k.py
#   (official_configs.md §1.2, §5.2).
# Total batch 16 = 16 GPUs x 1 image (bash tools/dist_train.sh CONFIG 16); lr is not rescaled for
#   other GPU counts unless --auto-scale-lr is given.
# Backbone: the official joint 427M -> ImageNet-22K (384) checkpoint
#   internimage_h_jointto22k_384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
# Test: python tools/test.py CONFIG CKPT (single scale) or ... --tta (multi-scale + flip).
_base_ = [
    './_base_/upernet_internimage_160k.py',
    './_base_/ade20k_internimage_896x896.py',
]

model = dict(
    data_preprocessor=dict(size=(896, 896)),
    backbone=dict(
        arch='h',
        layer_scale=None,
        drop_path_rate=0.5,
        with_cp=False,
        init_cfg=dict(
            type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_h_jointto22k_384.pth')),
    decode_head=dict(in_channels=[320, 640, 1280, 2560]),
    auxiliary_head=dict(in_channels=1280))

optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(layer_decay_rate=0.95))
