# A small InternImage on the synthetic shapes set (tools/misc/make_synthetic_imagenet.py):
# the classification pipeline end to end on a CPU in about a minute. Used by the tests.
#   python tools/misc/make_synthetic_imagenet.py data/synthetic_imagenet
#   python tools/train.py configs/classification/internimage-tiny_1xb16-12e_synthetic-64px.py
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['internimage_mm.tasks.classification'], allow_failed_imports=False)

data_root = 'data/synthetic_imagenet'
num_classes = 4
image_size = 64

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='InternImage',
        arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
        drop_path_rate=0.0,
        out_indices=(3, )),
    head=dict(
        type='InternImageClsHead',
        num_classes=num_classes,
        in_channels=128,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, )))

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=image_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=image_size),
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
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=12, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=12, val_interval=4)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
