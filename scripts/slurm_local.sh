#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing the project's SLURM launch path for real
# (tests/cluster/, docs/cluster.md): a real slurmctld, slurmd, munged and sbatch, with fake GPUs.
#
#   bash scripts/slurm_local.sh start    # install (root, apt) if missing, configure, start, wait
#   bash scripts/slurm_local.sh status   # exit 0 when the node takes jobs
#   bash scripts/slurm_local.sh stop     # stop the daemons (the configuration stays)
#
# For a throwaway machine (CI, a container, a test VM), never a real cluster's node: it writes
# /etc/slurm/slurm.conf and refuses to touch one it did not write. Needs root to install and
# start; as another user, `status` still says whether one runs. What it sets up:
# - one node, this host, declaring SLURM_LOCAL_CPUS CPUs, SLURM_LOCAL_MEM_MB memory and
#   SLURM_LOCAL_GPUS GPUs (defaults 64 / 512000 / 8) whatever the machine has
#   (SlurmdParameters=config_overrides), so that the slurm_gpu preset's requests (8 CPUs and 60 GB
#   per GPU) fit unchanged; the GPUs are gres backed by /dev/fakegpu<i> (character devices 1:3,
#   as /dev/null: slurmd refuses a gres count without device files);
# - partition SLURM_LOCAL_PARTITION (default `gpu`), the default one, OverSubscribe=FORCE:4 so
#   that jobs share the real cores;
# - no cgroups (proctrack/linuxproc, task/none) and no accounting (no slurmdbd): sacct fails,
#   which the project's launcher handles by reading job states from scontrol (docs/cluster.md).
# Logs: /var/log/slurm/slurmctld.log and slurmd.log.
set -euo pipefail

CPUS=${SLURM_LOCAL_CPUS:-64}
MEM_MB=${SLURM_LOCAL_MEM_MB:-512000}
GPUS=${SLURM_LOCAL_GPUS:-8}
PARTITION=${SLURM_LOCAL_PARTITION:-gpu}
CONF=/etc/slurm/slurm.conf
MARK="# written by backplay_exp scripts/slurm_local.sh"
LOCK=/run/lock/backplay_slurm_local.lock
HOST=$(hostname -s)

say() { echo "slurm_local: $*" >&2; }
die() { say "$*"; exit 1; }

node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1; }

running() {
  command -v sinfo >/dev/null || return 1
  case "$(node_state)" in idle* | mix* | alloc* | completing*) return 0 ;; *) return 1 ;; esac
}

install() {
  local pkgs=()
  command -v slurmctld >/dev/null || pkgs+=(slurmctld)
  command -v slurmd >/dev/null || pkgs+=(slurmd)
  command -v sbatch >/dev/null || pkgs+=(slurm-client)
  command -v munged >/dev/null || pkgs+=(munge)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get to install it"
  say "installing ${pkgs[*]} (Debian's packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends \
           "${pkgs[@]}" >/dev/null; } \
    || die "apt-get could not install ${pkgs[*]}"
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: this is a real cluster's node, not a test machine"
  fi
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  local i files=""
  for ((i = 0; i < GPUS; i++)); do
    # a container without CAP_MKNOD: a plain file also gives the node its gres (measured: jobs
    # get their GPUs, only without CUDA_VISIBLE_DEVICES, which nothing here reads)
    [ -e "/dev/fakegpu$i" ] || mknod "/dev/fakegpu$i" c 1 3 2>/dev/null || touch "/dev/fakegpu$i"
  done
  [ "$GPUS" -gt 0 ] && files="/dev/fakegpu[0-$((GPUS - 1))]"
  cat > "$CONF" <<EOF
$MARK
ClusterName=backplay_local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job that asks for no memory takes 1 GB per CPU, not the whole node
DefMemPerCPU=1024
GresTypes=gpu
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MpiDefault=none
# a finished job stays visible to scontrol (the launcher reads job states there) for 10 minutes
MinJobAge=600
KillWait=10
SchedulerParameters=sched_interval=2,bf_interval=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  if [ -n "$files" ]; then
    printf '%s\nName=gpu File=%s\n' "$MARK" "$files" > /etc/slurm/gres.conf
  else
    printf '%s\n' "$MARK" > /etc/slurm/gres.conf
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey --create >/dev/null 2>&1 \
      || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null \
           && chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key; }
  fi
  runuser -u munge -- munged
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
}

start() {
  if running; then say "already running (node $HOST: $(node_state))"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "needs root to install and start SLURM (no cluster is running)"
  install
  write_conf
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  local i state
  for ((i = 0; i < 60; i++)); do
    state=$(node_state)
    case "$state" in
      idle* | mix* | alloc*) say "running: node $HOST ($state), partition $PARTITION, $GPUS fake GPUs"; return 0 ;;
      down* | drain* | inval*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  die "the node did not come up (state: ${state:-none}); see /var/log/slurm/slurmd.log and slurmctld.log"
}

stop() {
  [ "$(id -u)" -eq 0 ] || die "needs root to stop the daemons"
  scontrol shutdown >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 20; i++)); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
    sleep 0.5
  done
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  say "stopped"
}

cmd=${1:-}
case "$cmd" in
  start)
    mkdir -p "$(dirname "$LOCK")"
    exec 9>"$LOCK"
    flock 9  # concurrent callers (pytest-xdist workers) wait for one start
    start
    ;;
  stop) stop ;;
  status)
    if running; then say "running (node $HOST: $(node_state))"; else say "not running"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
