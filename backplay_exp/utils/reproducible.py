"""Bit-reproducible CPU runs (`reproducible=true`): the same digits on any x86-64 CPU.

A CPU's instruction set changes float results: PyTorch dispatches its vectorised kernels by the
CPU's capability (default / AVX2 / AVX-512), MKL's matrix products pick their code path by it,
and oneDNN JIT-compiles kernels for it; with threads, a reduction's split follows the thread
count. Each reorders sums, so the same seed trains different weights on two machines (measured
in tests/integration/test_reproducible.py by emulating other CPUs with `ATEN_CPU_CAPABILITY` and
`MKL_ENABLE_INSTRUCTIONS`). This mode takes the instruction-set-independent path everywhere:

- `ATEN_CPU_CAPABILITY=default`: PyTorch's generic kernels, read when the first kernel runs;
- `MKL_CBWR=COMPATIBLE`: MKL's conditional numerical reproducibility, read at its first call;
- oneDNN off (`torch.backends.mkldnn.enabled = False`), a fixed thread count, and
  `torch.use_deterministic_algorithms(True)`.

Both variables are read once per process, so the mode must be set before the first tensor
operation: `apply` checks that it was, and otherwise names what to do.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)

ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def apply(enabled: bool, threads: int) -> None:
    """Put this process in bit-reproducible mode (see the module docstring) if `enabled`.

    Args:
        enabled: The `reproducible` config key.
        threads: The fixed number of intra-op threads (`reproducible_threads`).

    Raises:
        RuntimeError: if PyTorch already runs kernels of another capability (the mode was
            asked for after the first tensor operation of this process).
    """
    if not enabled:
        return
    os.environ.update(ENV)
    torch.backends.mkldnn.enabled = False
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "DEFAULT":
        raise RuntimeError(
            f"reproducible=true needs PyTorch's generic CPU kernels, but this process already "
            f"runs {capability} ones (a tensor operation ran before the mode was set): start it "
            "with ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE in the environment"
        )
    log.info("reproducible mode: generic CPU kernels, MKL CBWR, %d threads", threads)
