#!/usr/bin/env bash
# Sequence-disjoint development run (issue 13): train on 0001TP + 0016E5 (train/ and val/ pooled,
# 367 frames), validate on 0006R0 (101 frames the model never sees). Resumable: rerun this script
# and it continues from resume.pt exactly where it stopped.
# Finished (300 of 300 epochs) on 2026-12-02: best.pt is epoch 274 (the best on 0006R0), last.pt
# the fp16 weights of epoch 300; the scores on 0006R0 are in eval_0006R0/. resume.pt is not kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_seqsplit
RESUME=()
if [ -f "$RUN/resume.pt" ]; then RESUME=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch lraspp --data ../shared/data/camvid --out "$RUN" \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs 300 --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 2e-3 \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${RESUME[@]}" "$@"
