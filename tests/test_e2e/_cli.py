"""Run the toolbox's command-line tools as a user would, and read their metrics."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_tool(script: str, *args: str, cwd: Path, timeout: int = 900,
             env: dict | None = None) -> str:
    """``python tools/<script> args...``; returns stdout+stderr, fails the test on exit != 0."""
    cmd = [sys.executable, str(REPO / 'tools' / script), *map(str, args)]
    full_env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '2', **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}'
    return output


def metric(output: str, name: str) -> float:
    """The last value of ``name: <float>`` in an mmengine log."""
    values = re.findall(re.escape(name) + r':\s*(-?[0-9.]+)', output)
    assert values, f'no {name!r} in the output:\n{output[-3000:]}'
    return float(values[-1])
