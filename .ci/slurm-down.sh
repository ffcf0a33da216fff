#!/usr/bin/env bash
# Stops the one-node SLURM cluster of .ci/slurm-up.sh: only the daemons whose PID files
# it wrote ($STATE/run/*.pid), slurmd first. Keeps packages, configuration and logs.
set -uo pipefail

STATE=${RETENTION_SLURM_STATE:-/var/lib/retention-slurm}
RUN=$STATE/run

stop() {
    local name=$1 pidfile=$RUN/$1.pid pid
    [ -s "$pidfile" ] || { echo "slurm-down: $name: not started by slurm-up"; return; }
    pid=$(cat "$pidfile")
    # the PID must still belong to the daemon that slurm-up started
    if kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name ($pid) ignored SIGTERM; sending SIGKILL"
            kill -9 "$pid"
        fi
        echo "slurm-down: stopped $name ($pid)"
    else
        echo "slurm-down: $name ($pid) is not running"
    fi
    rm -f "$pidfile"
}

stop slurmd
stop slurmctld
stop munged
