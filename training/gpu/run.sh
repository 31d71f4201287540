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
# EPOCHS (default 300) and WORKERS (default 7 per run) may be set in front of the command. What
# comes back in $OUT: history, the weights (fp16: seqsplit-best.pt, final-final.pt) and the logs.
set -euo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-index .gpu/wheels/*.whl
export PYTHONPATH="$PWD"
EPOCHS=${EPOCHS:-300}
WORKERS=${WORKERS:-7}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
common=(--arch lraspp --data .gpu/camvid --epochs "$EPOCHS" --crop 288x384 --scale 0.5-2.0
        --batch-size 8 --lr 2e-3 --workers "$WORKERS" --val-every 10 --no-progress)
train() { python3 -m seg_perception.tools.cli train "$@"; }
train "${common[@]}" --out runs/seqsplit --train-sequences 0001TP,0016E5 \
    --val-sequences 0006R0 > "$OUT/seqsplit.log" 2>&1 &
disjoint=$!
train "${common[@]}" --out runs/final --all-frames > "$OUT/final.log" 2>&1 &
final=$!
status=0
wait $disjoint || status=1
wait $final || status=1
for run in seqsplit final; do
    cp "runs/$run/history.csv" "$OUT/$run-history.csv" || true
done
cp runs/seqsplit/best.pt "$OUT/seqsplit-best.pt" || true
cp runs/final/final.pt "$OUT/final-final.pt" || true
tail -3 "$OUT/seqsplit.log" "$OUT/final.log"
exit $status
