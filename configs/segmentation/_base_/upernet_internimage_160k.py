# UperNet + InternImage on ADE20K, 160k iterations: what every official UperNet config shares
# (official_configs.md §5.1, §5.2). The per-size configs set the backbone size, the heads'
# input widths, the lr and the layer decay; the data settings come from
# ./ade20k_internimage_{512x512,640x640,896x896}.py.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['internimage_mm.tasks.segmentation'], allow_failed_imports=False)

model = dict(
    # The base's ResNet checkpoint: unused (the official configs forwarded it to InternImage,
    # which ignored it); InternImage loads its weights through backbone.init_cfg.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        out_indices=(0, 1, 2, 3)),
    # UPerHead: channels 512, pool scales (1, 2, 3, 6), dropout 0.1, SyncBN, CE 1.0 (base).
    decode_head=dict(num_classes=150),
    # FCNHead on stage 3: channels 256, 1 conv, no concat, dropout 0.1, SyncBN, CE 0.4 (base).
    auxiliary_head=dict(num_classes=150),
    test_cfg=dict(mode='whole'))

# AdamW, weight decay 0.05, with the official det/seg layer-wise lr decay (N = num_layers + 2;
# no weight decay for norms, biases and 1-D parameters). The per-size configs set lr,
# num_layers, layer_decay_rate and depths.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=1.0, offset_lr_scale=1.0,
        decay_rule='detection'))

# Linear warmup over 1500 iterations from 1e-6 x lr, times poly (power 1.0) decay to exactly 0
# over all 160k iterations: both run from iteration 0 and multiply, as mmcv's
# PolyLrUpdaterHook(warmup='linear') did (lr_t = lr * (1e-6 + (1 - 1e-6) t / 1500) * (1 - t / T);
# mmengine's ramp reaches 1 at iteration 1499 instead of 1500: at most 1/1500 relative).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=160000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=1,
        save_best='mIoU'))

# The official total batch is 16 (8 GPUs x 2 images; H: 16 GPUs x 1 image).
auto_scale_lr = dict(enable=False, base_batch_size=16)
