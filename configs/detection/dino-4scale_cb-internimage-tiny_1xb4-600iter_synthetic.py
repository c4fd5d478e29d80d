# DINO on a tiny composite backbone (CB-InternImage) on the synthetic shapes set: the CB pipeline
# of dino-4scale_cb-internimage-h_o365-pre_16xb1-20k_coco.py end to end on a CPU (both branches'
# losses logged, the lead's features at test time); used by the tests.
#   python tools/misc/make_synthetic_coco.py data/synthetic_coco
#   python tools/train.py configs/detection/dino-4scale_cb-internimage-tiny_1xb4-600iter_synthetic.py
_base_ = './dino-4scale_internimage-tiny_1xb4-600iter_synthetic.py'

model = dict(
    type='CBDINO',
    branch_loss_weights=(0.5, 1.0),
    backbone=dict(
        _delete_=True,
        type='CBInternImage',
        arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
        layer_scale=1.0,
        drop_path_rate=0.0,
        out_indices=((0, 1, 2, 3), (1, 2, 3))))
