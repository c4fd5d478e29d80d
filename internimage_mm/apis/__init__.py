from .runner import build_runner, enable_amp, prepare_test_cfg, prepare_train_cfg, work_dir_for

__all__ = ['build_runner', 'enable_amp', 'prepare_test_cfg', 'prepare_train_cfg', 'work_dir_for']
