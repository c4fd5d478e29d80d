# The synthetic COCO instance set (tools/misc/make_synthetic_coco.py) on mmdet's COCO dataset
# settings: same files and layout as data/coco, small images (longer side <= 256), CPU-friendly
# loaders (no worker processes). The datasets are ValidatedCocoDataset (internimage_mm.datasets):
# mmdet's CocoDataset plus clear errors for missing paths and bad category ids.
#   python tools/misc/make_synthetic_coco.py data/synthetic_coco
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

dataset_type = 'ValidatedCocoDataset'
data_root = 'data/synthetic_coco/'
# Names and category order of the generated file (ids 1, 3, 5); --num-classes 3.
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 40, 40), (40, 200, 60), (50, 80, 230)])
image_scale = (256, 256)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
