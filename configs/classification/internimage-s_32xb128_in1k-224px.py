# InternImage-S on ImageNet-1K at 224x224, trained from scratch for 300 epochs.
# Paper: top-1 84.2, 50M params, 8G FLOPs
# (official yaml classification/configs/internimage_s_1k_224.yaml).
_base_ = ['./_base_/internimage_in1k.py']

model = dict(
    backbone=dict(arch='s', drop_path_rate=0.4),
    head=dict(in_channels=640),
)
