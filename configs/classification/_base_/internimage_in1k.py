# InternImage on ImageNet-1K from scratch: the official T/S/B recipe (official_configs.md §6)
# on mmpretrain components. The variant configs set the backbone arch, its drop path and the
# head width.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_scope = 'mmpretrain'
custom_imports = dict(imports=['internimage_mm.tasks.classification'], allow_failed_imports=False)

# Model: backbone stage 4 -> conv head (1x1 conv to 1.5x width, BN, GELU) -> pool -> fc.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InternImage', out_indices=(3, )),
    neck=None,
    head=dict(
        type='InternImageClsHead',
        num_classes=1000,
        cls_scale=1.5,
        # timm applies the smoothing (0.1) inside Mixup; smoothing the mixed soft targets
        # is the same thing, since both are linear.
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
    ),
    # timm Mixup: mixup 0.8 / cutmix 1.0, prob 1.0, switch prob 0.5, per batch.
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# Data. Train: RandomResizedCrop 224 bicubic, flip, RandAugment rand-m9-mstd0.5-inc1,
# RandomErasing 0.25 (per-pixel random fill) -- all from the mmpretrain base.
# Test: short side to 224 (bicubic) then centre crop 224, i.e. crop_pct 1.0 as the official
# TEST.CROP, not the 256/224 of the mmpretrain base.
# Global batch 4096 (32 GPUs x 128, the README's setting).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
# Flip test-time augmentation (`tools/test.py --tta`): scores averaged over the image and its
# mirror.
tta_model = dict(type='AverageClsScoreTTA')
tta_pipeline = [
    test_pipeline[0],
    dict(type='TestTimeAug',
         transforms=[test_pipeline[1:-1],
                     [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)],
                     [test_pipeline[-1]]]),
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Optimizer: AdamW, lr 5e-4 per 512 images -> 4e-3 at batch 4096; wd 0.05 except 1-D
# parameters and biases; grad clip 5.0 (global L2); AMP (the official main.py's default O1).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4 * 4096 / 512, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0),
)

# Schedule: 300 epochs, linear warmup 20 epochs from 1e-3 x lr (WARMUP_LR 5e-7 per 512), then
# cosine to 1e-2 x lr (MIN_LR 5e-6 per 512), stepped per iteration. (timm's cosine spans the
# whole 300 epochs from step 0; here it spans epochs 20-300, as usual in mmpretrain.)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=20, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

# Use `--auto-scale-lr` (tools/train.py) to scale the lr linearly to another total batch.
auto_scale_lr = dict(base_batch_size=4096)

# Model EMA, decay 0.9999, every iteration, buffers included (timm ModelEmaV2).
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL'),
]
