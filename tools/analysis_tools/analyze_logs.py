"""Plot loss curves and validation metrics from mmengine JSON logs (several runs in one figure).

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...] \
        --keys loss coco/bbox_mAP [--legend A B] [--title T] --out curves.png
    python tools/analysis_tools/analyze_logs.py keys LOG     # the scalars a log has

LOG: ``work_dirs/<run>/<timestamp>/vis_data/scalars.json`` (or the ``<timestamp>.json``).
"""
from __future__ import annotations

import argparse

from internimage_mm.analysis.logs import load_json_log, plot_curves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    plot = sub.add_parser('plot_curve', help='plot scalars of one or more runs to a PNG')
    plot.add_argument('logs', nargs='+')
    plot.add_argument('--keys', nargs='+', default=['loss'])
    plot.add_argument('--legend', nargs='+', default=None)
    plot.add_argument('--title', default=None)
    plot.add_argument('--out', required=True, help='PNG file to write')
    keys = sub.add_parser('keys', help='list the scalars of a log')
    keys.add_argument('log')
    args = parser.parse_args(argv)
    if args.command == 'keys':
        log = load_json_log(args.log)
        print(f'{len(log.train)} training records, {len(log.val)} validation records')
        print('\n'.join(log.keys()))
        return
    out = plot_curves([load_json_log(p) for p in args.logs], args.keys, args.out, args.legend,
                      args.title)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
