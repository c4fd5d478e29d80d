# Cascade Mask R-CNN with a tiny InternImage on the synthetic shapes set (CPU, minutes; used by
# the tests). The box heads follow the official InternImage Cascade configs (4 shared convs +
# 1 fc, normalised, decoded boxes with a GIoU loss), scaled down.
#   python tools/misc/make_synthetic_coco.py data/synthetic_coco
#   python tools/train.py configs/detection/cascade-mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic.py
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    './_base_/synthetic_coco_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

num_classes = 3
depths = (1, 1, 2, 1)
neck_channels = 64
# The official heads use SyncBN (multi-GPU). mmengine turns SyncBN into BN in a
# single-process run, but torch's SyncBatchNorm refuses CPU tensors in a distributed (gloo)
# run, so this CPU config uses BN; on GPUs `dict(type='SyncBN', requires_grad=True)`.
head_norm_cfg = dict(type='BN', requires_grad=True)


def _box_head(stds):
    return dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=neck_channels,
        conv_out_channels=neck_channels,
        fc_out_channels=256,
        roi_feat_size=7,
        num_classes=num_classes,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=head_norm_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


def _rcnn_stage(iou):
    return dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                      match_low_quality=False, ignore_iof_thr=-1),
        sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                     add_gt_as_proposals=True),
        mask_size=28,
        pos_weight=-1,
        debug=False)


model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=dict(channels=16, depths=depths, groups=(1, 2, 4, 8)),
        layer_scale=1.0,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=neck_channels),
    rpn_head=dict(in_channels=neck_channels, feat_channels=neck_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=neck_channels),
        bbox_head=[
            _box_head([0.1, 0.1, 0.2, 0.2]),
            _box_head([0.05, 0.05, 0.1, 0.1]),
            _box_head([0.033, 0.033, 0.067, 0.067]),
        ],
        mask_roi_extractor=dict(out_channels=neck_channels),
        mask_head=dict(num_convs=2, in_channels=neck_channels,
                       conv_out_channels=neck_channels, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=[_rcnn_stage(0.5), _rcnn_stage(0.6), _rcnn_stage(0.7)]),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(max_per_img=50)))

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
# AdamW with InternImage's layer-wise lr decay (num_layers = sum(depths), as the official
# configs).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9),
    clip_grad=dict(max_norm=10.0, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=4)
