#!/bin/sh
# Slurm Epilog (slurm.conf: Epilog=/etc/slurm/epilog.d/emit.sh): ends the job's run; its events go
# to the agent's outbox, from where `emit agent --to URL --token-file F` or `emit outbox flush`
# delivers them. Runs as root on every node of the job after it ended, however it ended.
EMIT=${EMIT:-/usr/local/bin/emit}
run_id="slurm/${SLURM_CLUSTER_NAME:-cluster}/${SLURM_JOB_ID:?SLURM_JOB_ID is not set}"
"$EMIT" agent end --run-id "$run_id" 2>>/var/log/emit-slurm.log || echo "emit: could not end $run_id" >>/var/log/emit-slurm.log
exit 0
