# InternImage-L/XL/H: ImageNet-22K pre-trained models fine-tuned on ImageNet-1K, the official
# recipe (official_configs.md §6) on mmpretrain components, at 384x384 (H overrides the size).
# The variant configs set the backbone arch, drop path, head, layer-decay depths and load_from.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_scope = 'mmpretrain'
custom_imports = dict(imports=['internimage_mm.tasks.classification'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    # Gradient checkpointing per block, as the official L/XL/H runs.
    backbone=dict(type='InternImage', out_indices=(3, ), with_cp=True),
    neck=None,
    head=dict(
        type='InternImageClsHead',
        num_classes=1000,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.3, mode='original'),
    ),
    # No mixup / cutmix in the fine-tuning.
)

# Data: RandomResizedCrop bicubic, flip, RandAugment rand-m9-mstd0.5-inc1 (still on), no
# random erasing. Test: short side to the size (bicubic), centre crop (crop_pct 1.0).
# Global batch 512 (32 GPUs x 16, the README's setting).
img_size = 384
bgr_mean = [103.53, 116.28, 123.675]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
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
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Optimizer: AdamW, lr 2e-5 per 512 images (-> 2e-5 at batch 512), wd 0.05 except 1-D
# parameters and biases, grad clip 5.0, AMP (the official main.py's default O1 overrides the
# yaml's O0). Layer-wise lr decay 0.9 with the classification rule (last block 1.0, each
# earlier block x0.9; patch_embed as stage-1 block 0; downsample/norm of stage i as block 0 of
# stage i+1) and DCN_LR_MUL 0.1 on the DCNv3 offsets (official keywords matched by name).
# The variant configs add num_layers (= sum(depths)) and depths.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-5 * 512 / 512, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        decay_rule='classification',
        layer_decay_rate=0.9,
        offset_lr_scale=0.1,
        offset_lr_scale_keys=['offset']),
    clip_grad=dict(max_norm=5.0),
)

# Schedule: 20 epochs, linear warmup 2 epochs from ~0 (WARMUP_LR 0), cosine to 0 (MIN_LR 0),
# stepped per iteration.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=2, end=20,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
auto_scale_lr = dict(base_batch_size=512)

# Model EMA, decay 0.9999, buffers included; EMAHook copies the loaded weights into the EMA
# model (official: the EMA copy is made after the pre-trained weights are loaded).
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL'),
]
