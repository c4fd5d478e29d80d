# Mask R-CNN + InternImage (FPN), 1x schedule: what the official T/S/B configs share
# (official_configs.md §4.1, §4.2). The variant files set the backbone size, its drop path and
# checkpoint, the FPN input widths and the layer-decay depth.
#
# mmdet 3.x's Mask R-CNN R50-FPN 1x is the official mmdet 2.x model unchanged (RPN, Shared2FC
# bbox head, FCN mask head, train/test cfgs), and its 1x data/schedule are the official ones:
# (1333, 800) + flip 0.5, 12 epochs, linear warmup 500 iters (ratio 1e-3), steps at [8, 11].
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
# ValidatedCocoDataset (internimage_mm.datasets) is mmdet's CocoDataset with clear errors for a
# missing path, a bad category id or image id, instead of silently skipped annotations.
custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        # The det configs set layer_scale=1.0 (T: trainable gammas starting at 1.0, absent from
        # the ImageNet checkpoint; S/B: loaded from it), unlike the T ImageNet model.
        layer_scale=1.0,
        with_cp=False,
        out_indices=(0, 1, 2, 3)),
    neck=dict(type='FPN', out_channels=256, num_outs=5))

# 2 images per GPU x 8 GPUs. --auto-scale-lr rescales lr by (total batch) / 16.
train_dataloader = dict(batch_size=2, dataset=dict(type='ValidatedCocoDataset'))
val_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
test_dataloader = dict(dataset=dict(type='ValidatedCocoDataset'))
auto_scale_lr = dict(enable=False, base_batch_size=16)

# AdamW lr 1e-4, wd 0.05 with the official layer-decay constructor at rate 1.0: every lr is
# the base lr, and 1-D / bias / "norm" parameters get no weight decay. No grad clip, no fp16.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rule='detection', layer_decay_rate=1.0))

val_evaluator = dict(classwise=True)
test_evaluator = val_evaluator

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
