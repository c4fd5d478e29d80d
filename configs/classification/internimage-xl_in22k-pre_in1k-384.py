# InternImage-XL: ImageNet-22K pre-trained,
# fine-tuned on ImageNet-1K at 384x384 for 20 epochs.
# Paper: top-1 88.0, 335M params, 163G FLOPs
# (official yaml classification/configs/internimage_xl_22kto1k_384.yaml).
_base_ = ['./_base_/internimage_in22k-ft_in1k.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['internimage_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='xl', drop_path_rate=0.2),
    head=dict(in_channels=1536),
)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=39, depths=[5, 5, 24, 5]))

# The official 22K checkpoint
# (internimage_xl_22k_192to384.pth) converted to mmpretrain's layout:
#   python tools/model_converters/internimage_cls_official_to_mmpretrain.py \
#       internimage_xl_22k_192to384.pth checkpoints/internimage_xl_22k_192to384_mmpretrain.pth
# Override with `--cfg-options load_from=PATH`. Its 21841-class fc does not fit the 1000-class
# head and is reported and skipped. To load only the backbone from the official file instead,
# set load_from=None and model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH).
load_from = 'checkpoints/internimage_xl_22k_192to384_mmpretrain.pth'
