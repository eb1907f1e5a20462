#!/usr/bin/env bash
# A real single-node SLURM on this machine, for tests and for trying the SLURM
# recipes: Debian's slurm-wlm + munge, run as root without systemd and without
# cgroups (proctrack/linuxproc, task/none, no accounting daemon).
#
#   deploy/slurm/local_cluster.sh install   # apt-get install slurm-wlm munge libpmix-dev (skips when present)
#   deploy/slurm/local_cluster.sh start     # munged + slurmctld + slurmd, waits until the node is idle
#   deploy/slurm/local_cluster.sh status    # daemons, sinfo, squeue
#   deploy/slurm/local_cluster.sh env       # prints: export SLURM_CONF=...
#   deploy/slurm/local_cluster.sh stop      # scancel everything, stop the daemons by PID
#
#   eval "$(deploy/slurm/local_cluster.sh env)"; srun -n 2 hostname
#
# Everything (slurm.conf, munge key and socket, controller state, spool, logs, pid
# files) lives in one state directory, $PROMPTSWEEP_SLURM_DIR (default
# /tmp/promptsweep-slurm; keep the path short: PMIx and munge put unix sockets
# under it). Nothing is written to /etc; every client (srun, sbatch, squeue,
# scontrol, scancel, sinfo) needs SLURM_CONF=$PROMPTSWEEP_SLURM_DIR/slurm.conf
# (sbatch/srun pass it on to the job's environment by default).
#
# Environment (read by start):
#   PROMPTSWEEP_SLURM_DIR      state directory                  [/tmp/promptsweep-slurm]
#   PROMPTSWEEP_SLURM_CPUS     CPUs the node offers             [$(nproc)]; more than nproc
#                              oversubscribes on purpose (SlurmdParameters=config_overrides)
#   PROMPTSWEEP_SLURM_MEM_MB   RealMemory in MB                 [MemTotal minus 10% (at least 1 GiB)]
#   PROMPTSWEEP_SLURM_PORT     slurmctld port; slurmd uses +1   [6817]
#   PROMPTSWEEP_SLURM_MPI      MpiDefault (none|pmix|pmi2)      [none: use srun --mpi=pmix for MPI]
#   PROMPTSWEEP_SLURM_FRESH=1  wipe the controller state first (job ids start at 1 again)
#   PROMPTSWEEP_SLURM_TIMEOUT  seconds to wait for the node to be idle [60]
#
# Quirks this script deals with (details in deploy/slurm/README.md):
#   - Slurm's mpi/pmix plugin dlopen()s the unversioned libpmix.so, which only
#     libpmix-dev ships; without it `srun --mpi=pmix` fails.
#   - munged runs as the munge user and insists that its key, socket directory,
#     log and seed files are owned by that user and not writable by others.
#   - package installs start daemons unless /usr/sbin/policy-rc.d says no, so
#     install puts a temporary one in place.
set -euo pipefail

state_dir=${PROMPTSWEEP_SLURM_DIR:-/tmp/promptsweep-slurm}
conf=$state_dir/slurm.conf
munge_dir=$state_dir/munge
munge_socket=$munge_dir/munge.socket.2
run_dir=$state_dir/run
log_dir=$state_dir/log
cluster=promptsweep
partition=debug

die() { echo "local_cluster.sh: $*" >&2; exit 1; }
note() { echo "local_cluster.sh: $*" >&2; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (the daemons run as root/munge and write pid files)"
}

# ---------------------------------------------------------------- install
installed() {
  local b
  for b in slurmctld slurmd srun sbatch munged mungekey; do
    command -v "$b" >/dev/null || return 1
  done
  id munge >/dev/null 2>&1 && dpkg -s libpmix-dev >/dev/null 2>&1
}

versions() {
  dpkg-query -W -f '${Package} ${Version}  ' slurm-wlm munge libpmix-dev 2>/dev/null || true
}

cmd_install() {
  if installed; then
    echo "already installed: $(versions)"
    return 0
  fi
  need_root
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then
    # keep apt from starting munge/slurmctld/slurmd through their init.d scripts
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  local pkgs=(slurm-wlm munge libpmix-dev)
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  fi
  if [ -n "$own_policy" ]; then rm -f "$policy"; trap - EXIT; fi
  echo "installed: $(versions)"
}

# ---------------------------------------------------------------- helpers
pid_alive() {  # pid_alive FILE NAME-PREFIX -> prints the pid when that process runs
  local file=$1 name=$2 pid comm
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case $comm in "$name"*) echo "$pid" ;; *) return 1 ;; esac
}

stop_pid() {  # stop_pid FILE NAME-PREFIX: TERM, up to 10 s, then KILL
  local file=$1 name=$2 pid i
  if pid=$(pid_alive "$file" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      note "$name ($pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    echo "stopped $name ($pid)"
  fi
  rm -f "$file"
}

node_name() { hostname -s; }

node_state() { SLURM_CONF=$conf sinfo -h -n "$(node_name)" -o %T 2>/dev/null | head -1; }

show_logs() {
  local f
  for f in "$log_dir/slurmctld.log" "$log_dir/slurmd.log" "$munge_dir/munged.log"; do
    [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
  done
  return 0
}

write_conf() {
  local host cpus mem_kb mem_mb headroom port
  host=$(node_name)
  cpus=${PROMPTSWEEP_SLURM_CPUS:-$(nproc)}
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  headroom=$((mem_kb / 1024 / 10))
  [ "$headroom" -ge 1024 ] || headroom=1024
  mem_mb=${PROMPTSWEEP_SLURM_MEM_MB:-$((mem_kb / 1024 - headroom))}
  [ "$mem_mb" -ge 256 ] || mem_mb=256
  port=${PROMPTSWEEP_SLURM_PORT:-6817}
  cat >"$conf.tmp" <<EOF
# Written by deploy/slurm/local_cluster.sh start; rewritten on every start.
# Single node, root, no systemd, no cgroups, no accounting daemon.
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# socket: our own munged; cred_expire: a requeued job may start again after this
# many seconds (default 120, i.e. ~2.5 min before a requeued job runs again)
AuthInfo=socket=$munge_socket,cred_expire=30
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$run_dir/slurmctld.pid
SlurmdPidFile=$run_dir/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
PlugStackConfig=$state_dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$log_dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=5,sched_interval=5
MpiDefault=${PROMPTSWEEP_SLURM_MPI:-none}
ReturnToService=2
JobRequeue=1
KillWait=5
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
Waittime=0
MinJobAge=300
# trust the CPUs/RealMemory below even when they exceed the hardware (oversubscription for tests)
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem_mb State=UNKNOWN
PartitionName=$partition Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
  chmod 644 "$conf"
  : >"$state_dir/plugstack.conf"
  echo "$cpus $mem_mb"
}

start_munge() {
  if pid_alive "$munge_dir/munged.pid" munged >/dev/null; then return 0; fi
  id munge >/dev/null 2>&1 || die "no munge user: run '$0 install'"
  install -d -o munge -g munge -m 0755 "$munge_dir"
  if [ ! -s "$munge_dir/munge.key" ]; then
    mungekey --create --keyfile="$munge_dir/munge.key"
  fi
  chown munge:munge "$munge_dir/munge.key"
  chmod 0600 "$munge_dir/munge.key"
  rm -f "$munge_socket" "$munge_socket.lock" "$munge_dir/munged.pid"
  # munged refuses root-owned keys when run as munge and vice versa; running it as
  # the munge user is what Debian's init script does (never --force: a second
  # daemon on the same socket steals it).
  runuser -u munge -- munged --socket="$munge_socket" --key-file="$munge_dir/munge.key" \
    --pid-file="$munge_dir/munged.pid" --log-file="$munge_dir/munged.log" \
    --seed-file="$munge_dir/munged.seed" ||
    { show_logs; die "munged did not start"; }
  local i
  for ((i = 0; i < 50; i++)); do
    munge -n -S "$munge_socket" 2>/dev/null | unmunge -S "$munge_socket" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  show_logs
  die "munged does not answer on $munge_socket"
}

cmd_env() {
  echo "export SLURM_CONF=$conf"
}

# ---------------------------------------------------------------- start
cmd_start() {
  need_root
  installed ||
    die "slurm-wlm/munge not installed: run '$0 install'"
  export SLURM_CONF=$conf
  local state=""
  if pid_alive "$munge_dir/munged.pid" munged >/dev/null &&
     pid_alive "$run_dir/slurmctld.pid" slurmctld >/dev/null &&
     pid_alive "$run_dir/slurmd.pid" slurmd >/dev/null &&
     state=$(node_state) && [ -n "$state" ]; then
    echo "already running: node $(node_name) ($state), state in $state_dir"
    cmd_env
    return 0
  fi
  # a half-started cluster: stop what is left and start cleanly
  stop_daemons quiet
  if [ -n "${PROMPTSWEEP_SLURM_FRESH:-}" ]; then
    rm -rf "$state_dir/ctld" "$state_dir/spool"
  fi
  local port=${PROMPTSWEEP_SLURM_PORT:-6817} p
  for p in "$port" "$((port + 1))"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is taken (another slurmctld/slurmd?): stop it or set PROMPTSWEEP_SLURM_PORT"
    fi
  done
  install -d -m 0755 "$state_dir" "$run_dir" "$log_dir" "$state_dir/ctld" "$state_dir/spool"
  local res cpus mem
  res=$(write_conf)
  read -r cpus mem <<<"$res"
  start_munge
  slurmctld -f "$conf" || { show_logs; die "slurmctld did not start"; }
  slurmd -f "$conf" -N "$(node_name)" || { show_logs; die "slurmd did not start"; }

  local timeout=${PROMPTSWEEP_SLURM_TIMEOUT:-60} t0=$SECONDS resumed=""
  while :; do
    state=$(node_state || true)
    case $state in
      idle | mixed | allocated) break ;;
      down* | drain*)
        if [ -z "$resumed" ]; then
          scontrol update nodename="$(node_name)" state=resume >/dev/null 2>&1 || true
          resumed=1
        fi ;;
    esac
    if ((SECONDS - t0 >= timeout)); then
      note "node $(node_name) not idle after ${timeout}s (state: ${state:-no answer})"
      show_logs
      exit 1
    fi
    sleep 1
  done
  echo "slurm up in $((SECONDS - t0))s: cluster $cluster, node $(node_name) ($state), $cpus CPUs, RealMemory ${mem} MB, partition $partition, MpiDefault=${PROMPTSWEEP_SLURM_MPI:-none}; state in $state_dir"
  cmd_env
}

# ---------------------------------------------------------------- stop
stop_daemons() {
  stop_pid "$run_dir/slurmd.pid" slurmd
  stop_pid "$run_dir/slurmctld.pid" slurmctld
  stop_pid "$munge_dir/munged.pid" munged
  rm -f "$munge_socket" "$munge_socket.lock"
}

cmd_stop() {
  need_root
  export SLURM_CONF=$conf
  if [ -f "$conf" ] && pid_alive "$run_dir/slurmctld.pid" slurmctld >/dev/null; then
    local jobs i
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      echo "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 30; i++)); do
        [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
        sleep 1
      done
    fi
  fi
  stop_daemons
  local left
  left=$(pgrep -x slurmstepd 2>/dev/null | tr '\n' ' ' || true)
  [ -z "$left" ] || note "slurmstepd processes still running (PIDs $left): not ours to kill blindly"
  echo "stopped (state kept in $state_dir)"
}

# ---------------------------------------------------------------- status
cmd_status() {
  export SLURM_CONF=$conf
  local d pid rc=0
  for d in "munged:$munge_dir/munged.pid" "slurmctld:$run_dir/slurmctld.pid" "slurmd:$run_dir/slurmd.pid"; do
    if pid=$(pid_alive "${d#*:}" "${d%%:*}"); then
      echo "${d%%:*}: running (pid $pid)"
    else
      echo "${d%%:*}: not running"
      rc=3
    fi
  done
  if [ "$rc" -eq 0 ]; then
    sinfo -N -o '%N %P %T %c %m' || rc=1
    squeue -o '%.8i %.9P %.20j %.8u %.10T %.10M %.10l %.6D %R' || rc=1
    cmd_env
  fi
  return "$rc"
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
