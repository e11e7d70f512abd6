"""Where the submitting process reads its SLURM jobs' states: sacct, or squeue without accounting.

submitit asks `sacct`. On a cluster without accounting (no slurmdbd, as on many small
clusters) every call fails: submitit logs "Bypassing sacct error" at each poll and never
learns a job's state, so it sees a job finish only by its result file; a job that ends
without one (`scancel`, a node failure, out of memory) leaves the submitting process waiting
forever. `SqueueWatcher` reads the same states from `squeue --states=all`, which shows
finished jobs for the controller's MinJobAge (300 s by default) after they end.
"""

from __future__ import annotations

import logging
import subprocess
import time

from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger(__name__)

# squeue's answer for job ids the controller has already purged (finished > MinJobAge ago)
PURGED_ERROR = "Invalid job id"
# the state recorded for a job that squeue no longer lists: it finished (how is not known)
PURGED = "PURGED"
# the longest wait between two state polls of a sweep's jobs (submitit polls more often in
# a job's first minute); submitit's own default is 600 s, which leaves a sweep waiting up to
# ten minutes for a job that was cancelled
POLL_S = 30


def has_accounting() -> bool:
    """Whether `sacct` answers on this cluster (it fails where accounting is disabled)."""
    try:
        run = subprocess.run(
            ["sacct", "--noheader", "--jobs=1", "--format=JobID"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def make_watcher() -> SlurmInfoWatcher:
    """The watcher for this cluster's jobs: sacct where accounting answers, else squeue."""
    if has_accounting():
        return SlurmInfoWatcher(delay_s=POLL_S)
    log.info("no SLURM accounting here (sacct fails): job states come from squeue")
    return SqueueWatcher(delay_s=POLL_S)


class SqueueWatcher(SlurmInfoWatcher):
    """submitit's SLURM watcher, reading job states from `squeue --states=all` instead of sacct.

    Its lines (`12_3|RUNNING`, `12_[4-7%16]|PENDING`) are sacct's `JobID|State` columns, so
    submitit's own parser reads them. A job squeue no longer lists has finished and been purged
    (`PURGED`); a failing call (the controller busy) leaves the states as they were.
    """

    def _make_command(self) -> list[str] | None:
        ids = sorted({job.split("_")[0] for job in self._registered - self._finished})
        if not ids:
            return None
        return ["squeue", "--noheader", "--states=all", "--format=%i|%T", f"--jobs={','.join(ids)}"]

    def update(self) -> None:
        """Poll squeue once for every registered, unfinished job."""
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        run = subprocess.run(command, capture_output=True, text=True)
        self._last_status_check = time.time()
        unfinished = self._registered - self._finished
        if run.returncode == 0:
            states = self.read_info("JobID|State\n" + run.stdout)
        elif PURGED_ERROR in run.stderr:
            states = {}
        else:
            log.debug("squeue failed (%s); job states unchanged", run.stderr.strip())
            return
        self._info_dict.update(states)
        for job in unfinished - set(states):
            self._info_dict[job] = {"JobID": job, "State": PURGED}
        for job in unfinished:
            if self.is_done(job, mode="cache"):
                self._finished.add(job)
