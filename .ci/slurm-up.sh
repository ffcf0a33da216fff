#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for the SLURM profile test (tests/test_slurm.py).
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge when missing, writes
# /etc/slurm/slurm.conf and gres.conf (a fake GPU: gres File=/dev/null), then starts
# munged, slurmctld and slurmd -N localhost as root without systemd and waits until the
# node is idle. Idempotent: daemons it already started (PID files under $STATE) are
# kept. Nothing listens beyond 127.0.0.1's host. Stop with .ci/slurm-down.sh.
#
#   sudo .ci/slurm-up.sh            # about 20 s from scratch, 1 s when already up
#   RETENTION_SLURM_STATE=/path .ci/slurm-up.sh
set -euo pipefail

STATE=${RETENTION_SLURM_STATE:-/var/lib/retention-slurm}
LOGS=$STATE/log
RUN=$STATE/run
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
MARK="# written by retention .ci/slurm-up.sh"

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages and starts daemons)"

# ------------------------------------------------------------------ packages
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client munged:munge; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d (present in containers) keeps the packages from starting services
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# ------------------------------------------------------------------ configuration
mkdir -p "$LOGS" "$RUN" "$STATE/ctld" "$STATE/slurmd" /etc/slurm
for file in "$CONF" "$GRES"; do
    if [ -e "$file" ] && ! grep -qF "$MARK" "$file"; then
        die "$file exists and was not written by this script; refusing to overwrite a real cluster's configuration"
    fi
done

cat >"$CONF.new" <<EOF
$MARK: a one-node test cluster on localhost.
ClusterName=retentionci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default one job takes all of the node's memory
DefMemPerCPU=1000
# finished jobs stay visible to squeue for 10 minutes (the plugin's squeue status
# command needs >= 120 s)
MinJobAge=600
# memory limits are enforced by polling every second (no cgroups here): a job over
# its --mem is killed, state OUT_OF_MEMORY
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# requeued or timed-out jobs get SIGTERM, then SIGKILL after KillWait seconds
KillWait=5
JobRequeue=1
ReturnToService=2
SchedulerType=sched/backfill
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=localhost CPUs=2 RealMemory=20000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$GRES.new" <<EOF
$MARK: a fake GPU (jobs with --gpus=1 get CUDA_VISIBLE_DEVICES=0);
# without File= the node drains.
NodeName=localhost Name=gpu File=/dev/null
EOF
changed=0
for file in "$CONF" "$GRES"; do
    if ! cmp -s "$file.new" "$file"; then
        mv "$file.new" "$file"
        changed=1
    else
        rm -f "$file.new"
    fi
done

# ------------------------------------------------------------------ daemons
# a PID file of ours whose process is still that daemon (not a reused PID)
alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$(basename "$1" .pid)" ]
}

if [ $changed -eq 1 ] && { alive "$RUN/slurmctld.pid" || alive "$RUN/slurmd.pid"; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    for d in slurmd slurmctld; do
        if alive "$RUN/$d.pid"; then kill "$(cat "$RUN/$d.pid")"; fi
    done
    for _ in $(seq 50); do
        alive "$RUN/slurmd.pid" || alive "$RUN/slurmctld.pid" || break
        sleep 0.2
    done
fi

# munge: /run/munge owned by munge, munged as the munge user
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
chown munge:munge "$LOGS"  # munged's log; the slurm daemons run as root
if ! alive "$RUN/munged.pid"; then
    if [ -S /run/munge/munge.socket.2 ] && pgrep -x munged >/dev/null; then
        die "a munged not started by this script is running; stop it or use that cluster"
    fi
    say "starting munged"
    # munged daemonises and writes its own PID file (as the munge user, so the file
    # lies in a munge-owned directory); its copy in $RUN marks it as ours
    runuser -u munge -- munged --force --log-file="$LOGS/munged.log" \
        --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$RUN/munged.pid"
fi
munge -n | unmunge >/dev/null || die "munge does not work; see $LOGS/munged.log"

if ! alive "$RUN/slurmctld.pid"; then
    say "starting slurmctld"
    # -i: ignore errors in the saved state of an earlier run
    slurmctld -i
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || die "slurmctld did not come up; see $LOGS/slurmctld.log"

if ! alive "$RUN/slurmd.pid"; then
    say "starting slurmd"
    slurmd -N localhost
fi

state=""
for _ in $(seq 150); do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null | head -1)
    case "$state" in
        idle|mix|alloc|comp) break ;;
        down*|drain*|drng*|fail*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case "$state" in
    idle|mix|alloc|comp) ;;
    *) sinfo -R >&2 || true; die "node localhost is '$state'; see $LOGS/slurmd.log and $LOGS/slurmctld.log" ;;
esac

say "cluster up: node localhost ($state), partition debug, 2 CPUs, 20000 MB, gres gpu:1 (fake)"
say "config: $CONF, $GRES"
say "logs: $LOGS/{munged,slurmctld,slurmd}.log"
say "PID files: $RUN (stop with .ci/slurm-down.sh)"
