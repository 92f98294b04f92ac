#!/bin/sh
# Slurm Prolog (slurm.conf: Prolog=/etc/slurm/prolog.d/emit.sh): opens the job's run in the node
# agent before the job starts. Runs as root on every node of the job; the agent's uid check then
# lets root's epilog end it. GPUs: the ones Slurm gave the job (SLURM_JOB_GPUS, indices), else
# every device of the node. A failure must not keep the job from starting: log it and go on.
EMIT=${EMIT:-/usr/local/bin/emit}
run_id="slurm/${SLURM_CLUSTER_NAME:-cluster}/${SLURM_JOB_ID:?SLURM_JOB_ID is not set}"
devices=""
[ -n "${SLURM_JOB_GPUS:-}" ] && devices="--devices ${SLURM_JOB_GPUS}"
# shellcheck disable=SC2086  # $devices is one flag and its value, or nothing
"$EMIT" agent begin --run-id "$run_id" $devices \
  --label "slurm_user=${SLURM_JOB_USER:-unknown}" --label "slurm_partition=${SLURM_JOB_PARTITION:-unknown}" \
  >/dev/null 2>>/var/log/emit-slurm.log || echo "emit: could not begin $run_id" >>/var/log/emit-slurm.log
exit 0
