#!/usr/bin/env bash
# Issue 13 trial on the sequence-disjoint split, finished (300 of 300 epochs) on 2026-12-04 and
# rejected (models/README.md): EMA 41.9 against 41.6 trained at epoch 300. last.pt holds the EMA of
# epoch 300 (training/last_epoch.py), best.pt epoch 166; resume.pt is dropped. The bundled
# LRASPP recipe (training/lraspp_seqsplit/run.sh, same seed) plus a weight EMA (decay 0.999 per optimizer step
# after the warm-up min(0.999, (1 + n) / (10 + n)),
# a time constant of ~22 epochs at 45 steps an epoch). The EMA does not feed back into training,
# but float differences on this host already move the loss in the 5th digit at epoch 1 (1.97498
# vs 1.97495 in lraspp_seqsplit) and the runs part after that, so the comparison is inside this
# run: val_miou (averaged weights) against raw_val_miou (the trained weights), epoch for epoch.
# Train on 0001TP + 0016E5, validate on 0006R0. Resumable: rerun this script and it continues
# from resume.pt.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_ema_seqsplit
RESUME=()
if [ -f "$RUN/resume.pt" ]; then RESUME=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch lraspp --data ../shared/data/camvid --out "$RUN" \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs 300 --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 2e-3 --ema 0.999 \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${RESUME[@]}" "$@"
