"""Sweep reports: the paper's table (report.md/csv), the Pareto plot, W&B logging."""
