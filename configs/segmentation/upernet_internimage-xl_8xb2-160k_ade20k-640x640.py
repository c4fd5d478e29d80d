# UperNet + InternImage-XL on ADE20K, crop 640x640, 160k iterations.
# Paper (ADE20K val, UperNet, XL): mIoU 55.0 single-scale / 55.3 multi-scale, 368M params,
#   3142G FLOPs at 640x2560.
# Official: segmentation/configs/ade20k/upernet_internimage_xl_640_160k_ade20k.py
#   (official_configs.md §1.2, §5.2).
# Total batch 16 = 8 GPUs x 2 images (bash tools/dist_train.sh CONFIG 8); lr is not rescaled for
#   other GPU counts unless --auto-scale-lr is given.
# Backbone: the official ImageNet-22K (192->384) checkpoint internimage_xl_22k_192to384.pth, fetched from its release URL (a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
# Test: python tools/test.py CONFIG CKPT (single scale) or ... --tta (multi-scale + flip).
_base_ = [
    './_base_/upernet_internimage_160k.py',
    './_base_/ade20k_internimage_640x640.py',
]

model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        arch='xl',
        layer_scale=1.0,
        drop_path_rate=0.4,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))

optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(layer_decay_rate=0.94))
