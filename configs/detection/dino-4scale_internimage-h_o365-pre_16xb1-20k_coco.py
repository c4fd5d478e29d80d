# DINO (4 scales) + InternImage-H on COCO 2017: the COCO fine-tuning stage of the paper's
# Objects365 -> COCO recipe.
# Paper (COCO, DINO, H, joint + Objects365 pretrained): box AP 63.4 (val), 1.1B params.
# Official: detection/configs/coco/dino_4scale_internimage_h_objects365_coco_ss.py
#   (official_configs.md §4.4): 20k iterations at 1 image per GPU, constant lr after warmup,
#   train short edge uniform in [600, 1800] (long <= 2000), test (2000, 1000), DN 1000 queries,
#   300 detections, layer decay 0.94 with MSDeformAttn sampling offsets at 1e-3 x lr.
# Weights: like the official file, no backbone checkpoint and no load_from is set. The paper's
#   number needs the DINO-H model pretrained on Objects365 (not released as a file here):
#   pass it with --cfg-options load_from=PATH_OR_URL (an official checkpoint is converted in
#   memory as it loads; docs/official_checkpoints.md).
_base_ = './_base_/dino-4scale_internimage_1x_coco.py'

model = dict(
    backbone=dict(
        arch='h',
        drop_path_rate=0.5,
        layer_scale=None,
        with_cp=True,
        init_cfg=None),
    neck=dict(in_channels=[640, 1280, 2560]),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=1000)),
    test_cfg=dict(max_per_img=300))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    # 'range' mode: long edge 2000, short edge drawn uniformly in [600, 1800], keep ratio.
    dict(type='RandomResize', scale=[(2000, 600), (2000, 1800)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=(2000, 1000), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# 1 image per GPU; the official GPU count is not stated (16 assumed for --auto-scale-lr).
train_dataloader = dict(
    batch_size=1,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)

# 20k iterations, validation and checkpoints every 200; linear warmup 500 then constant lr.
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=20000, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=3,
                    save_best='auto'))
log_processor = dict(by_epoch=False)

# AdamW lr 1e-4, wd 1e-4, layer decay 0.94 over num_layers + 2 = 52 ids; the MSDeformAttn
# sampling offsets (encoder and decoder) train at 1e-3 x their lr; grad clip 0.1 (L2).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rule='detection', layer_decay_rate=0.94, offset_lr_scale=1e-3,
                       offset_lr_scale_keys=('sampling_offsets', )))
