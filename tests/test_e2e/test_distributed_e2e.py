"""Launch scripts on CPU: torchrun with 2 gloo processes, and SLURM through a stand-in srun."""
import os
import re
import socket
import stat
import subprocess
import sys

import pytest
import torch

from ._cli import REPO, metric

CONFIG = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd, cwd, env=None, timeout=900, check=True):
    full_env = {**os.environ, 'PYTHON': sys.executable, 'PYTHONUNBUFFERED': '1',
                'OMP_NUM_THREADS': '1', 'PORT': str(_free_port()), **(env or {})}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{out[-6000:]}'
    return proc.returncode, out


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic_imagenet')
    subprocess.run([sys.executable, str(REPO / 'tools/misc/make_synthetic_imagenet.py'), str(out),
                    '--num-classes', '4', '--train-per-class', '16', '--val-per-class', '6'],
                   check=True, capture_output=True)
    return out


def _options(data, extra=()):
    return ['--cfg-options',
            *[f'{k}.dataset.data_root={data}'
              for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
            'train_dataloader.batch_size=8', *extra]


def _train_config(tmp_path, dump_dir):
    """The tiny config plus the test hook that saves every rank's parameters."""
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = ['{CONFIG}']\n"
                   "custom_imports = dict(imports=['internimage_mm.tasks.classification', "
                   "'tests.test_e2e._rank_hook'],"
                   " allow_failed_imports=False)\n"
                   f"custom_hooks = [dict(type='DumpRankParamsHook', out_dir='{dump_dir}')]\n")
    return cfg


def _train_options(data):
    return _options(data, ['train_cfg.max_epochs=2', 'train_cfg.val_interval=100'])


def _assert_identical_ranks(dump_dir):
    ranks = [torch.load(dump_dir / f'rank{r}.pth', weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for k in ranks[0]:
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0, atol=0, msg=k)
    return ranks


def test_dist_train_two_processes_identical_weights(data, tmp_path):
    dump = tmp_path / 'params'
    _, out = _run(['bash', REPO / 'tools/dist_train.sh', _train_config(tmp_path, dump), 2,
                   '--work-dir', tmp_path / 'w', *_train_options(data)], cwd=tmp_path)
    assert 'Distributed launcher: pytorch' in out and 'GPU number: 2' in out  # = world size
    _assert_identical_ranks(dump)
    assert (tmp_path / 'w' / 'epoch_2.pth').is_file()


def test_dist_test_matches_single_process(data, tmp_path):
    _run([sys.executable, REPO / 'tools/train.py', CONFIG, '--work-dir', tmp_path / 'w',
          *_options(data, ['train_cfg.max_epochs=2', 'train_cfg.val_interval=100'])],
         cwd=tmp_path)
    ckpt = tmp_path / 'w' / 'epoch_2.pth'
    _, single = _run([sys.executable, REPO / 'tools/test.py', CONFIG, ckpt, '--work-dir',
                      tmp_path / 't1', *_options(data)], cwd=tmp_path)
    _, dist = _run(['bash', REPO / 'tools/dist_test.sh', CONFIG, ckpt, 2, '--work-dir',
                    tmp_path / 't2', *_options(data)], cwd=tmp_path)
    assert metric(dist, 'accuracy/top1') == metric(single, 'accuracy/top1')


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_fsdp_train_matches_ddp(data, tmp_path):
    """``--strategy fsdp`` (mmengine's FlexibleRunner, torch FSDP on 2 gloo CPU processes, one
    unit per InternImage block, activation checkpointing on) trains like DDP: the same loss and
    global gradient norm each logged iteration (clipping at 0.5 is active, so a per-shard
    norm would differ), the layer-decay constructor builds the same groups (names, lr scales,
    weight decay) from FSDP's flat shards, and the final weights agree. The checkpoint is a
    full state dict that plain tools/test.py loads and scores as the run's own validation
    did."""
    opts = _options(data, [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', 'randomness.seed=0',
        'default_hooks.logger.interval=1', 'optim_wrapper.clip_grad.max_norm=0.5',
        'optim_wrapper.constructor=InternImageLayerDecayOptimizerConstructor',
        'optim_wrapper.paramwise_cfg.decay_rule=classification',
        'optim_wrapper.paramwise_cfg.layer_decay_rate=0.8'])
    _, ddp = _run(['bash', REPO / 'tools/dist_train.sh', CONFIG, 2, '--work-dir',
                   tmp_path / 'ddp', *opts], cwd=tmp_path)
    _, fsdp = _run(['bash', REPO / 'tools/dist_train.sh', CONFIG, 2, '--work-dir',
                    tmp_path / 'fsdp', '--strategy', 'fsdp', *opts,
                    'model.backbone.with_cp=True'], cwd=tmp_path)
    assert "type='InternImageFSDPStrategy'" in fsdp

    def groups(out):  # the constructor's summary: lr scale per layer id, weight-decay-free count
        m = re.search(r'InternImageLayerDecayOptimizerConstructor: rule=(.*?)custom_keys', out,
                      re.S)
        assert m, out[-3000:]
        return re.sub(r'\n\S+ - mmengine - INFO - ', '\n', m.group(1))

    # FSDP shows each rank a flat 1-D shard of every weight: the groups (weight decay too)
    # must still be those of the unwrapped model
    assert groups(fsdp) == groups(ddp)
    total = int(re.search(r'(\d+) trainable parameter tensors', groups(ddp)).group(1))
    assert int(re.search(r'weight decay 0: (\d+)', groups(ddp)).group(1)) < total

    def logged(out, key):
        return [float(v) for v in re.findall(rf'Epoch\(train\).* {key}: ([0-9.]+)', out)]

    for key in ('grad_norm', 'loss'):
        a, b = logged(ddp, key), logged(fsdp, key)
        assert len(a) == len(b) == 8 and a[0] > 0.5, (key, a, b)  # clipping was active
        assert b == pytest.approx(a, rel=2e-3), key

    a, b = _weights(tmp_path / 'ddp' / 'epoch_2.pth'), _weights(tmp_path / 'fsdp' / 'epoch_2.pth')
    assert a.keys() == b.keys()  # full, unsharded state dict with the model's own names
    diff = sum(((a[k].float() - b[k].float())**2).sum() for k in a)**0.5
    norm = sum((a[k].float()**2).sum() for k in a)**0.5
    # Observed 3e-4 (reduction order, amplified by Adam); per-shard clipping gives 7e-3.
    assert diff / norm < 2e-3, float(diff / norm)

    _, single = _run([sys.executable, REPO / 'tools/test.py', CONFIG,
                      tmp_path / 'fsdp' / 'epoch_2.pth', '--work-dir', tmp_path / 't',
                      *_options(data)], cwd=tmp_path)
    # the checkpoint is the trained model: the same accuracy as the validation after training
    assert metric(single, 'accuracy/top1') == metric(fsdp, 'accuracy/top1')


def test_fsdp_resume_continues_exactly(data, tmp_path):
    """``--strategy fsdp --resume``: the sharded optimizer state is restored (mmengine's own
    FSDP strategy crashes here on torch 2.13), so 1 epoch + resume + 1 epoch ends with the
    very weights of 2 epochs in one go (deterministic pipeline: mmengine does not restore the
    augmentations' random state, only the sampler's)."""
    cfg = tmp_path / 'deterministic.py'
    cfg.write_text(f"_base_ = ['{CONFIG}']\n"
                   'train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))\n')
    opts = _options(data, ['train_cfg.val_interval=100', 'randomness.seed=0',
                           'default_hooks.checkpoint.interval=1'])
    fsdp = ['bash', REPO / 'tools/dist_train.sh', cfg, 2, '--strategy', 'fsdp']
    _run([*fsdp, '--work-dir', tmp_path / 'a', *opts, 'train_cfg.max_epochs=1'], cwd=tmp_path)
    _, out = _run([*fsdp, '--work-dir', tmp_path / 'a', '--resume', *opts,
                   'train_cfg.max_epochs=2'], cwd=tmp_path)
    assert 'resumed epoch: 1' in out
    _run([*fsdp, '--work-dir', tmp_path / 'b', *opts, 'train_cfg.max_epochs=2'], cwd=tmp_path)
    a, b = _weights(tmp_path / 'a' / 'epoch_2.pth'), _weights(tmp_path / 'b' / 'epoch_2.pth')
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=k)


def _fake_slurm(bin_dir):
    """A stand-in ``srun`` that starts --ntasks copies with the SLURM_* variables a real srun
    sets, and a stand-in ``scontrol`` (mmengine asks it for the master host name)."""
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text('''#!/usr/bin/env python3
import os, subprocess, sys
args = sys.argv[1:]
ntasks, i = 1, 0
while i < len(args) and args[i].startswith('-'):
    a = args[i]
    if a.startswith('--ntasks='):
        ntasks = int(a.split('=', 1)[1])
    if a == '-p':
        i += 1
    i += 1
cmd = args[i:]
procs = []
for rank in range(ntasks):
    env = dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
               SLURM_LOCALID=str(rank), SLURM_NODELIST='localhost', SLURM_JOB_ID='1',
               SLURM_NNODES='1')
    procs.append(subprocess.Popen(cmd, env=env))
sys.exit(max(p.wait() for p in procs))
''')
    scontrol = bin_dir / 'scontrol'
    scontrol.write_text('#!/bin/sh\necho 127.0.0.1\n')
    for f in (srun, scontrol):
        f.chmod(f.stat().st_mode | stat.S_IEXEC)


def test_slurm_train_through_stand_in_srun(data, tmp_path):
    _fake_slurm(tmp_path / 'bin')
    dump = tmp_path / 'params'
    env = {'PATH': f"{tmp_path / 'bin'}:{os.environ['PATH']}", 'GPUS': '2',
           'GPUS_PER_NODE': '2', 'MASTER_PORT': str(_free_port())}
    _, out = _run(['bash', REPO / 'tools/slurm_train.sh', 'cpu', 'job',
                   _train_config(tmp_path, dump), tmp_path / 'w', *_train_options(data)],
                  cwd=tmp_path, env=env)
    assert 'Distributed launcher: slurm' in out and 'GPU number: 2' in out
    _assert_identical_ranks(dump)
    assert (tmp_path / 'w' / 'epoch_2.pth').is_file()


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', ['only_config']),
    ('dist_test.sh', ['config', 'ckpt']),
    ('slurm_train.sh', ['p', 'job', 'config']),
    ('slurm_test.sh', ['p', 'job']),
])
def test_launchers_print_usage(script, args, tmp_path):
    code, out = _run(['bash', REPO / 'tools' / script, *args], cwd=tmp_path, check=False)
    assert code == 2 and 'usage:' in out


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        port = s.getsockname()[1]
        code, out = _run(['bash', REPO / 'tools/dist_train.sh', CONFIG, 2], cwd=tmp_path,
                         env={'PORT': str(port)}, check=False)
    assert code != 0
    assert f'cannot use port {port}' in out and 'set PORT=' in out
