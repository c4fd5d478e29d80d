"""tools/analysis_tools/benchmark_fsdp_memory.py: DDP and FSDP side by side on 2 CPU ranks."""
import re

from ..conftest import load_tool


def _tool():
    return load_tool('analysis_tools/benchmark_fsdp_memory.py')


def test_fsdp_holds_half_the_training_state_on_two_ranks(capsys):
    """The bytes of parameters + gradients + AdamW moments per rank: all of them under DDP
    (16 bytes per float32 parameter), about half under FSDP with 2 ranks (its flat shards are
    padded to a multiple of the world size)."""
    runs = _tool().main(['--channels', '16', '--steps', '1'])
    out = capsys.readouterr().out
    n = runs['ddp'][0]['num_params']
    for r in runs['ddp']:
        assert r['params'] == 4 * n and r['optimizer'] == 8 * n, r
    for r in runs['fsdp']:
        held = r['params'] + r['grads'] + r['optimizer']
        assert 0.5 * 16 * n <= held <= 0.5 * 16 * n * 1.01, (held, 16 * n)
        assert r['peak'] > held
    assert re.search(r'\| FSDP \|.*\| 0\.50x \| [\d.]+x \|', out), out
