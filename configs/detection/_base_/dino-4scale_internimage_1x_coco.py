# DINO (4 scales) + InternImage, 12 epochs: what the official T/L configs share
# (official_configs.md §4.1, §4.4). The variant files set the backbone, the ChannelMapper
# input widths, the optimizer and the number of test detections.
#
# From mmdet 3.x's DINO-4scale R50 12e, which is the official model (900 queries, two-stage,
# box refinement, 6+6 layers, FFN 2048, temperature-20 sine encoding, CDN with label noise 0.5
# and box noise 1.0 and 100 dynamic DN queries, focal/L1/GIoU losses 1/5/2 and the same
# Hungarian costs), with these changes to match the official run:
# * type LegacyDINO: the official query-position MLP (512 -> 256, see
#   internimage_mm/models/detectors/legacy_dino.py; mmdet 3.x's is 1024 -> 256), so official
#   checkpoints convert key for key; its head LegacyDINOHead refines boxes from the references
#   clamped as officially (eps 1e-3), so official weights give the official boxes;
# * ChannelMapper from InternImage stages 2-4 (kernel 1, GN 32, 4 outputs);
# * images padded to a multiple of 32 (mmdet's DINO config pads to 1);
# * crop policy without negative crops (mmdet: allowed) and images without boxes filtered
#   (mmdet 2.x CocoDataset default; mmdet's DINO config keeps them);
# * linear warmup of 500 iterations (ratio 1e-3) before the step at epoch 11;
# * classwise COCO bbox metric, best checkpoint kept, checkpoint every epoch (keep 3).
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
# ValidatedCocoDataset (internimage_mm.datasets) is mmdet's CocoDataset with clear errors for a
# missing path, a bad category id or image id, instead of silently skipped annotations.
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

model = dict(
    type='LegacyDINO',
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        out_indices=(1, 2, 3)),
    neck=dict(
        type='ChannelMapper',
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    # the official box-refinement clamp (inverse sigmoid eps 1e-3; mmdet's head uses 1e-5)
    bbox_head=dict(type='LegacyDINOHead'),
    num_queries=900,
    positional_encoding=dict(num_feats=128, normalize=True, temperature=20),
    dn_cfg=dict(label_noise_scale=0.5, box_noise_scale=1.0,
                group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)))

# flip 0.5, then policy A (short edge 480..800 step 32, long <= 1333) or B (short edge
# 400/500/600 with long <= 4200, absolute-range crop 384..600 without negative crops, then A).
__short_edges = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333),
                 (672, 1333), (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=__short_edges, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 4200), (500, 4200), (600, 4200)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=False),
                dict(type='RandomChoiceResize', scales=__short_edges, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
# 2 images per GPU x 8 GPUs.
train_dataloader = dict(
    batch_size=2,
    dataset=dict(type='ValidatedCocoDataset', filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
test_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
auto_scale_lr = dict(enable=False, base_batch_size=16)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[11], gamma=0.1),
]

val_evaluator = dict(classwise=True)
test_evaluator = val_evaluator

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
