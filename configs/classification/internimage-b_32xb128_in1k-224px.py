# InternImage-B on ImageNet-1K at 224x224, trained from scratch for 300 epochs.
# Paper: top-1 84.9, 97M params, 16G FLOPs
# (official yaml classification/configs/internimage_b_1k_224.yaml).
_base_ = ['./_base_/internimage_in1k.py']

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.5),
    head=dict(in_channels=896),
)
