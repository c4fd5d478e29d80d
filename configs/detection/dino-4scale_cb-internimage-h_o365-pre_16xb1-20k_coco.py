# DINO (4 scales) + CB-InternImage-H (composite backbone) on COCO 2017: the paper's record row.
# Paper: box AP 64.5 (val, single scale), 65.0 val / 65.4 test-dev with test-time augmentation,
#   2.18B params (2,178,558,124, as the official model).
# Official: detection/configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ss.py
#   (official_configs.md §4.4, cb_internimage.md): the DINO-H recipe (20k iterations at 1 image
#   per GPU, train short edge 600-1800 / long <= 2000, test (2000, 1000), DN 1000, AdamW 1e-4 /
#   wd 1e-4, clip 0.1, 500 warmup iterations), started from the Objects365-pretrained CB model.
# Released weights: https://huggingface.co/OpenGVLab/InternImage/resolve/main/
#   dino_4scale_cbinternimage_h_objects365_coco.pth (tools/test.py takes the URL as it is).
# Training state of 2.18B parameters is ~35 GB (AdamW, fp32): train with --strategy fsdp
#   (bash tools/dist_train.sh CONFIG 16 --strategy fsdp --amp --amp-dtype bfloat16).
# Test-time augmentation (tools/test.py ... --tta): OURS, not the official one (the official
#   repository has no TTA code): short edges 800/1000/1200 (long <= 2000) x flip, merged by
#   mmdet's DetTTAModel with NMS 0.7, 300 boxes per image.
_base_ = './dino-4scale_internimage-h_o365-pre_16xb1-20k_coco.py'

model = dict(
    type='CBDINO',
    # the assisting branch's losses x 0.5, the lead's x 1 (official cb_first_weight)
    branch_loss_weights=(0.5, 1.0),
    backbone=dict(
        _delete_=True,
        type='CBInternImage',
        arch='h',
        # both backbones return strides 8/16/32; the assisting one computes stage 1 for the
        # composite connections
        out_indices=((0, 1, 2, 3), (1, 2, 3)),
        drop_path_rate=0.5,
        with_cp=True))

# Layer-wise decay as the official run really applied it: the official rule names only
# `backbone.levels.*`, so the CB backbones (`backbone.cb_modules.*`) train at scale 1 and only
# DINO's level embedding is decayed (0.94^51); decay_cb_backbones=True decays both backbones
# block by block instead (ours).
optim_wrapper = dict(paramwise_cfg=dict(decay_cb_backbones=False))

load_from = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
             'dino_4scale_cbinternimage_h_objects365_80classes.pth')

tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.7), max_per_img=300))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(2000, s), keep_ratio=True) for s in (800, 1000, 1200)],
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                             'flip', 'flip_direction'))],
        ]),
]
