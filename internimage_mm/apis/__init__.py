from .builder import TASKS, build_model, config_state_dict, config_task, load_config
from .runner import build_runner, enable_amp, prepare_test_cfg, prepare_train_cfg, run, work_dir_for
from .strategy import STRATEGIES, enable_strategy

__all__ = [
    'STRATEGIES', 'TASKS', 'build_model', 'build_runner', 'config_state_dict', 'config_task',
    'enable_amp', 'enable_strategy', 'load_config', 'prepare_test_cfg', 'prepare_train_cfg',
    'run', 'work_dir_for'
]
