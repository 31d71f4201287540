#!/usr/bin/env bash
# Issue 13, the control of training/lraspp_distill_seqsplit: the same 20-epoch fine-tune of the
# finished disjoint LRASPP run (epoch 300, 42.6 mIoU on 0006R0) without teachers, so what the
# distillation adds is told apart from what a second, short low-rate schedule does alone.
# Resumable: rerun to continue.
# Finished 2026-12-07 (median 91 s an epoch, 1 thread, AVX2 host): 0006R0 mIoU 39.5-43.0 over the
# run, 42.4 at epoch 20 (raw argmax) against 42.6 for the weights it started from; scored like
# the bundle 43.5 mIoU, road 93.7 (eval_0006R0/): a second short schedule adds nothing by itself.
# No weights kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-training/lraspp_finetune_seqsplit}  # the trials built on this control set their own
START=(--init training/lraspp_seqsplit/last.pt)
if [ -f "$RUN/resume.pt" ]; then START=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch lraspp --data ../shared/data/camvid --out "$RUN" \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs "${EPOCHS:-20}" --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 4e-4 \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${START[@]}" "$@"
