# Cascade Mask R-CNN + InternImage (FPN), 1x schedule: what the official L/XL configs share
# (official_configs.md §4.1, §4.3). The variant files set the backbone size, drop path,
# checkpoint, FPN input widths and the layer-decay depth.
#
# From mmdet 3.x's Cascade Mask R-CNN R50-FPN 1x (the official base model: RPN CE + SmoothL1
# beta 1/9, 3 stages with IoU 0.5/0.6/0.7 and loss weights [1, 0.5, 0.25], FCN mask heads), with
# the three box heads replaced as in the official configs: 4 shared 3x3 convs (256, SyncBN) +
# 1 shared fc (1024), class-specific regression of decoded boxes with GIoU loss (weight 10).
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
# ValidatedCocoDataset (internimage_mm.datasets) is mmdet's CocoDataset with clear errors for a
# missing path, a bad category id or image id, instead of silently skipped annotations.
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        layer_scale=1.0,  # det configs: 1.0 (gammas loaded from the IN-22K checkpoints)
        with_cp=False,
        out_indices=(0, 1, 2, 3)),
    neck=dict(type='FPN', out_channels=256, num_outs=5),
    # Three identical 4conv1fc heads (SyncBN, GIoU) that differ only in the coder's stds.
    roi_head=dict(bbox_head=[
        dict(
            type='ConvFCBBoxHead',
            num_shared_convs=4,
            num_shared_fcs=1,
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    ]))

# 2 images per GPU x 8 GPUs.
train_dataloader = dict(batch_size=2, dataset=dict(type='ValidatedCocoDataset'))
val_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
test_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
auto_scale_lr = dict(enable=False, base_batch_size=16)

# AdamW lr 1e-4, wd 0.05; layer decay 0.94 (N = num_layers + 2: patch_embed gets 0.94^(N-1),
# the last backbone block 0.94, neck and heads 1). No grad clip, no fp16.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rule='detection', layer_decay_rate=0.94))

val_evaluator = dict(classwise=True)
test_evaluator = val_evaluator

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
