# UperNet + a small InternImage on the synthetic ADE20K-format set of coloured shapes
# (tools/misc/make_synthetic_ade20k.py): the segmentation pipeline end to end on a CPU in a few
# minutes, with the ADE20K conventions (reduce_zero_label, IoUMetric mIoU). Used by the tests.
#   python tools/misc/make_synthetic_ade20k.py data/synthetic_ade20k
#   python tools/train.py configs/segmentation/upernet_internimage-tiny_1xb4-600iter_synthetic-128x128.py
#   python tools/test.py configs/segmentation/upernet_internimage-tiny_1xb4-600iter_synthetic-128x128.py \
#       work_dirs/upernet_internimage-tiny_1xb4-600iter_synthetic-128x128/iter_600.pth --show-dir vis/
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['internimage_mm.tasks.segmentation'], allow_failed_imports=False)

data_root = 'data/synthetic_ade20k'
num_classes = 4
crop_size = (128, 128)
img_scale = (512, 128)
# BN instead of the paper configs' SyncBN: one CPU process, no process group.
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
        layer_scale=1.0,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2, 3)),
    decode_head=dict(
        in_channels=[16, 32, 64, 128], channels=64, num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=64, channels=32, num_classes=num_classes, norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))

# The synthetic set: images/{training,validation}/*.jpg, annotations/.../*.png, 0 = other.
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'cross'),
    palette=[[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 200, 30]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=num_classes),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
img_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(512 * r), int(128 * r)), keep_ratio=True)
             for r in img_ratios],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='CheckSegLabels', num_classes=num_classes)],
            [dict(type='PackSegInputs')],
        ])
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# The paper recipe scaled down: AdamW + the layer-decay constructor (rate 1.0, as T/S/B),
# linear warmup times poly decay.
max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
