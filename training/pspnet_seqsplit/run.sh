#!/usr/bin/env bash
# The next architecture trial of issue 13 on the sequence-disjoint split: PSPNet with a ResNet-18
# encoder (segmentation-models-pytorch, encoder_weights=None), the LRASPP recipe otherwise
# (training/lraspp_seqsplit/run.sh). Chosen because it costs about half of LRASPP's training
# step on this CPU (0.79 vs 1.52 s at batch 8, 288x384) and runs 19.5 ms INT8 at 480x360, inside
# the 30 frames/s target (docs/models.md). Train on 0001TP + 0016E5, validate on 0006R0.
# Finished 2026-12-03 (0006R0 mIoU 40.4 at epoch 300 against LRASPP 42.6: rejected, models/README.md).
# Resumable: rerun this script and it continues from resume.pt exactly where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/pspnet_seqsplit
RESUME=()
if [ -f "$RUN/resume.pt" ]; then RESUME=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch pspnet --backbone resnet18 \
    --data ../shared/data/camvid --out "$RUN" \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs 300 --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 2e-3 \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${RESUME[@]}" "$@"
