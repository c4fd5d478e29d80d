# InternImage-T on ImageNet-1K at 224x224, trained from scratch for 300 epochs.
# Paper: top-1 83.5, 30M params, 5G FLOPs
# (official yaml classification/configs/internimage_t_1k_224.yaml).
_base_ = ['./_base_/internimage_in1k.py']

model = dict(
    backbone=dict(arch='t', drop_path_rate=0.1),
    head=dict(in_channels=512),
)
