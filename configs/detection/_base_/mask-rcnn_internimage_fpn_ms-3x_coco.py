# Mask R-CNN + InternImage (FPN), 3x schedule with the DETR-style multi-scale training policy
# (official_configs.md §4.1, §4.2): 36 epochs, steps at [27, 33], and after a 0.5 flip one of
#   A: resize to a short edge in {480, 512, ..., 800} (long edge <= 1333), or
#   B: resize to a short edge in {400, 500, 600} (long <= 1333), crop an absolute-range
#      384..600 patch (negative crops allowed, masks cropped too), resize as in A.
# Not mmdet's mask-rcnn_r50_fpn_ms-poly-3x base: that one repeats the dataset 3x over 12 epochs,
# resizes to short edges 640-800 and keeps polygon masks; the official run is this one.
_base_ = './mask-rcnn_internimage_fpn_1x_coco.py'

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
