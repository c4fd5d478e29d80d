from .runner import (build_runner, enable_amp, prepare_test_cfg, prepare_train_cfg, run,
                     work_dir_for)
from .strategy import STRATEGIES, enable_strategy

__all__ = [
    'STRATEGIES', 'build_runner', 'enable_amp', 'enable_strategy', 'prepare_test_cfg',
    'prepare_train_cfg', 'run', 'work_dir_for'
]
