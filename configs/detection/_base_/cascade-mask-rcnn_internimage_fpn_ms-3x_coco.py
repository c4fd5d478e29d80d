# Cascade Mask R-CNN + InternImage (FPN), 3x schedule with the DETR-style multi-scale policy
# (official_configs.md §4.1, §4.3): as the 1x base, plus
# * train pipeline: flip 0.5, then policy A (short edge 480..800 step 32, long <= 1333) or B
#   (short edge 400/500/600, absolute-range crop 384..600 with negative crops allowed, then A);
# * 36 epochs, steps at [27, 33];
# * lr 2e-4 for a total batch of 64 (2 images x 32 GPUs), layer decay 0.90. The official
#   offset_lr_scale=0.01 matched no parameter (its keys are MSDeformAttn names), so it is left
#   at 1.0 here: the same optimizer;
# * ExpMomentum EMA of parameters and buffers (momentum 1e-4, gamma 2000, every iteration),
#   swapped in for validation and checkpoints. The official hook list is replaced by it.
_base_ = './cascade-mask-rcnn_internimage_fpn_1x_coco.py'

__short_edges = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333),
                 (672, 1333), (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=__short_edges, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=__short_edges, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]

# lr 2e-4 is for 64 images per iteration (official: 4 nodes x 8 GPUs x 2). On fewer GPUs run
# with --auto-scale-lr to scale it by (total batch) / 64.
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.90))
auto_scale_lr = dict(enable=False, base_batch_size=64)

custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=1e-4, gamma=2000,
         update_buffers=True, priority=49)
]
