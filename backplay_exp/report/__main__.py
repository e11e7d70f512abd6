"""`python -m backplay_exp.report <sweep_dir>`: (re)build a sweep's report."""

from __future__ import annotations

import sys

from backplay_exp.report.table import write_report

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m backplay_exp.report <sweep_dir>")
    sys.stdout.write(write_report(sys.argv[1]))
