#!/usr/bin/env bash
# One device-tool command for a GPU session (issue 13): both runs of the protocol at once.
#   1. the sequence-disjoint development run (train 0001TP + 0016E5, validate on 0006R0 that it
#      never sees): the honest estimate for unseen roads and the schedule's curve;
#   2. the final model on all 468 frames with the same schedule (`--all-frames`: val = 0016E5 is
#      seen in training, only a sanity check; final.pt is the last epoch).
# Prepare here first: `.venv/bin/python training/gpu/pack.py ../shared/data/camvid` (about 25 MiB),
# and move the CPU run's 39 MB training/lraspp_seqsplit/resume.pt out of the tree for the call
# (the tree that travels is limited to 64 MiB; the GPU runs start from scratch), then
#   run(command='bash training/gpu/run.sh', carry=['.gpu'], timeout_s=600)
# EPOCHS (default 300) and WORKERS (default 7 per run) may be set in front of the command.
# TRIALS adds sequence-disjoint runs of other architectures beside the two, for the architecture
# choice of issue 13, e.g. TRIALS='pspnet:resnet18 deeplabv3plus:mobilenet_v2' (INT8 on this
# project's CPU: 19.5 and 25.1 ms a frame; deeplabv3plus:resnet18 at 33.0 ms misses 30 fps); set
# WORKERS lower then (16 cores in all). What comes back in $OUT: history, the weights (fp16:
# seqsplit-best.pt, final-final.pt, trial-ARCH-BACKBONE-best.pt) and the logs.
# EXTRA adds training options to every run, e.g. EXTRA='--ema 0.999' (the EMA trial of
# training/lraspp_ema_seqsplit; each run then logs raw_val_miou beside val_miou).
set -euo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-index .gpu/wheels/*.whl
export PYTHONPATH="$PWD"
EPOCHS=${EPOCHS:-300}
WORKERS=${WORKERS:-7}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
common=(--data .gpu/camvid --epochs "$EPOCHS" --crop 288x384 --scale 0.5-2.0
        --batch-size 8 --lr 2e-3 --workers "$WORKERS" --val-every 10 --no-progress)
read -r -a extra <<< "${EXTRA:-}"
common+=("${extra[@]}")
train() { python3 -m seg_perception.tools.cli train "$@"; }
train "${common[@]}" --arch lraspp --out runs/seqsplit --train-sequences 0001TP,0016E5 \
    --val-sequences 0006R0 > "$OUT/seqsplit.log" 2>&1 &
disjoint=$!
train "${common[@]}" --arch lraspp --out runs/final --all-frames > "$OUT/final.log" 2>&1 &
final=$!
pids=("$disjoint" "$final")
runs=(seqsplit final)
for trial in ${TRIALS:-}; do
    arch=${trial%%:*}
    backbone=${trial#*:}
    name=trial-$arch-$backbone
    train "${common[@]}" --arch "$arch" --backbone "$backbone" --out "runs/$name" \
        --train-sequences 0001TP,0016E5 --val-sequences 0006R0 > "$OUT/$name.log" 2>&1 &
    pids+=($!)
    runs+=("$name")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for run in "${runs[@]}"; do
    cp "runs/$run/history.csv" "$OUT/$run-history.csv" || true
    case $run in trial-*) cp "runs/$run/best.pt" "$OUT/$run-best.pt" || true ;; esac
done
cp runs/seqsplit/best.pt "$OUT/seqsplit-best.pt" || true
cp runs/final/final.pt "$OUT/final-final.pt" || true
tail -3 "$OUT"/*.log
exit $status
