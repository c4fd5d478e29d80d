# DINO (4 scales) with a tiny InternImage on the synthetic shapes set, boxes only (CPU, minutes;
# used by the tests). As dino-4scale_internimage-t_8xb2-12e_coco.py (the official model): LegacyDINO,
# InternImage stages 2-4 (strides 8/16/32) mapped to the transformer width plus one extra
# stride-64 level. Scaled down for a CPU: narrower and shallower transformer, fewer queries.
#   python tools/misc/make_synthetic_coco.py data/synthetic_coco
#   python tools/train.py configs/detection/dino-4scale_internimage-tiny_1xb4-600iter_synthetic.py
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

dataset_type = 'ValidatedCocoDataset'
data_root = 'data/synthetic_coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 40, 40), (40, 200, 60), (50, 80, 230)])
num_classes = 3
image_scale = (256, 256)
depths = (1, 1, 2, 1)
embed_dims = 128

model = dict(
    # The official query-position MLP (internimage_mm/models/detectors/legacy_dino.py) and
    # padding to a multiple of 32, as the COCO DINO configs.
    type='LegacyDINO',
    data_preprocessor=dict(pad_size_divisor=32),
    num_queries=100,
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=dict(channels=16, depths=depths, groups=(1, 2, 4, 8)),
        layer_scale=1.0,
        drop_path_rate=0.0,
        out_indices=(1, 2, 3)),
    neck=dict(in_channels=[32, 64, 128], out_channels=embed_dims, num_outs=4),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    decoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(type='LegacyDINOHead', num_classes=num_classes, embed_dims=embed_dims),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=50))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# DINO trains on images without annotations too (filter_empty_gt=False, from the base).
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
# AdamW with InternImage's layer-wise lr decay, as the official InternImage DINO configs
# (which drop the base's backbone lr_mult=0.1); `level_embed` gets the stem's (smallest) lr.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9),
    clip_grad=dict(max_norm=0.1, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=4)
