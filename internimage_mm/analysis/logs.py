"""mmengine's JSON training logs: read them and plot loss curves and validation metrics.

mmengine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/scalars.json`` (and the
logger ``<timestamp>.json``): one JSON object per line, training lines with ``lr``/``loss*``
values at ``step`` = iteration, validation lines with metrics (``coco/bbox_mAP``, ``mIoU``,
``accuracy/top1``, ...) at ``step`` = epoch (0 in iteration-based runs) unless the logger hook
says otherwise; they are placed at the last training iteration logged before them.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ['RunLog', 'load_json_log', 'plot_curves']


@dataclass
class RunLog:
    """One run's scalars: ``train`` and ``val`` records in file order."""
    path: Path
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)

    def keys(self) -> list[str]:
        return sorted({k for r in self.train + self.val for k in r} -
                      {'step', 'epoch', 'iter', 'logged_step'})

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of ``key`` from the records that have it."""
        records = [r for r in self.train + self.val if key in r]
        return [r['step'] for r in records], [float(r[key]) for r in records]


def load_json_log(path: str | Path) -> RunLog:
    """Read one mmengine JSON log (``scalars.json`` or ``<timestamp>.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'log file {path} does not exist')
    log = RunLog(path)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}:{n} is not a JSON line: {e}') from None
        if 'step' not in record:
            record['step'] = record.get('iter', record.get('epoch', n))
        is_train = 'lr' in record or any(k.startswith('loss') for k in record)
        if is_train:
            log.train.append(record)
            continue
        # mmengine logs validation at step = epoch by default (log_metric_by_epoch), 0 in
        # iteration-based runs: plot it at the last training iteration before it instead.
        record['logged_step'] = record['step']
        if log.train:
            record['step'] = log.train[-1]['step']
        log.val.append(record)
    return log


def plot_curves(logs: Sequence[RunLog], keys: Sequence[str], out: str | Path,
                legend: Sequence[str] | None = None, title: str | None = None) -> Path:
    """One panel per key, one line per run; writes a PNG to ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if legend is not None and len(legend) != len(logs):
        raise ValueError(f'{len(legend)} legend entries for {len(logs)} logs')
    for log in logs:
        missing = [k for k in keys if not any(k in r for r in log.train + log.val)]
        if len(missing) == len(keys):
            raise KeyError(f'{log.path} has none of the keys {list(keys)}; it has {log.keys()}')
    labels = legend or [_run_name(log.path) for log in logs]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for log, label in zip(logs, labels):
            steps, values = log.series(key)
            if steps:
                ax.plot(steps, values, marker='o' if len(steps) < 20 else None, markersize=3,
                        label=label)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel('iteration / epoch (step)', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _run_name(path: Path) -> str:
    """``work_dirs/<run>/<timestamp>/vis_data/scalars.json`` -> ``<run>``."""
    parts = path.resolve().parts
    if 'vis_data' in parts:
        i = parts.index('vis_data')
        return parts[i - 2] if i >= 2 else path.stem
    return path.parent.name if path.stem[:8].isdigit() else path.stem
