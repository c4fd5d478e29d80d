# InternImage-XL: ImageNet-22K pre-trained,
# fine-tuned on ImageNet-1K at 384x384 for 20 epochs.
# Paper: top-1 88.0, 335M params, 163G FLOPs
# (official yaml classification/configs/internimage_xl_22kto1k_384.yaml).
_base_ = ['./_base_/internimage_in22k-ft_in1k.py']

model = dict(
    backbone=dict(arch='xl', drop_path_rate=0.2),
    head=dict(in_channels=1536),
)

# Starts from the official pre-trained classifier internimage_xl_22k_192to384.pth, loaded as it is
# (converted in memory on load); its 21841-class fc does not fit the 1000-class head and is
# reported and skipped. A local copy: --cfg-options load_from=PATH. To load only the backbone,
# set load_from=None and model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...).
load_from = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_xl_22k_192to384.pth'
