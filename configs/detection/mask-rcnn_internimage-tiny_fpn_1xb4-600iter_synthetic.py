# Mask R-CNN with a tiny InternImage on the synthetic shapes set: the detection pipeline end to
# end (mmdet datasets, Mask R-CNN, CocoMetric bbox + segm) on a CPU in minutes; used by the tests
# and `make demo`. Trained from scratch (no pretrained weights can be downloaded here); the
# 600 iterations reach COCO bbox/segm mAP 0.74/0.76 on the synthetic val set.
#   python tools/misc/make_synthetic_coco.py data/synthetic_coco
#   python tools/train.py configs/detection/mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic.py
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/synthetic_coco_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

num_classes = 3
depths = (1, 1, 2, 1)
neck_channels = 64

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
        bbox_head=dict(in_channels=neck_channels, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=neck_channels),
        mask_head=dict(num_convs=2, in_channels=neck_channels,
                       conv_out_channels=neck_channels, num_classes=num_classes)),
    # Fewer proposals and RoI samples than COCO's settings: a few objects per small image.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(max_per_img=50)))

# Iteration-based schedule, validated every 200 iterations (~4 min on 2 CPU cores at bs 4).
max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
# AdamW with InternImage's layer-wise lr decay (num_layers = sum(depths), as the official
# configs); the rate is below 1 so that the decay is exercised.
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
