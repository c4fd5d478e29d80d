# ADE20K data settings of the official InternImage UperNet configs with crop 896 (H)
# (official_configs.md §5.1): random resize of (3584, 896) by [0.5, 2.0] (keep ratio), random
# crop 896x896 with cat_max_ratio 0.75, flip 0.5, photometric distortion; padding to the crop
# in the data preprocessor (seg 255). Test: resize to (3584, 896) keeping the ratio, then the
# official ResizeToMultiple(32); labels checked by CheckSegLabels. TTA (tools/test.py --tta):
# the official --aug-test, scales (3584, 896) x [0.5 .. 1.75] with and without flip.
# 1 image(s) per GPU (official: 16 GPUs x 1 image = 16).
_base_ = 'mmseg::_base_/datasets/ade20k_640x640.py'

num_classes = 150
crop_size = (896, 896)
img_scale = (3584, 896)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label=True comes from ADE20KDataset
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
    # the annotation is loaded after the resize: metrics are computed at the original size
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(3584 * r), int(896 * r)), keep_ratio=True)
             for r in img_ratios],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='CheckSegLabels', num_classes=num_classes)],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
