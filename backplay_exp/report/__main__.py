"""`python -m backplay_exp.report <sweep_dir>`: (re)build a sweep's report (and its verdict)."""

from __future__ import annotations

import sys

from backplay_exp.report.claims import sweep_claims, write_verdict
from backplay_exp.report.table import write_report

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m backplay_exp.report <sweep_dir>")
    sys.stdout.write(write_report(sys.argv[1]))
    claims = sweep_claims(sys.argv[1])
    if claims is not None:
        sys.stdout.write("\n" + write_verdict(sys.argv[1], claims))
