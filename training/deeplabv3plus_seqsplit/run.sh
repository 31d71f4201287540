#!/usr/bin/env bash
# The next architecture trial of issue 13 on the sequence-disjoint split: DeepLabV3+ with a
# MobileNetV2 encoder (segmentation-models-pytorch, encoder_weights=None), the LRASPP recipe
# otherwise (training/lraspp_seqsplit/run.sh). Chosen because its decoder works at 1/4 of the
# input (LRASPP's at 1/8), for the thin classes that keep mIoU down (pole, sign, fence 7-21 IoU
# on 0006R0), and MobileNetV2 quantizes well: random-init exports at 352x480 (the nearest size
# its stride 16 takes) run 14.0 ms INT8 / 26.2 ms fp32 against the bundle's 14.1 / 12.7 ms
# (`bench models`, model only, 2026-12-04; 25.1 ms INT8 against LRASPP's 20.9 fp32 on the slower
# host of docs/models.md), so only INT8 fits the 30 frames/s target. 71-88 s an epoch here (2
# threads), 6-7.3 h for 300 epochs. Train on 0001TP + 0016E5, validate on 0006R0.
# Resumable: rerun this script and it continues from resume.pt exactly where it stopped.
# resume.pt (53 MB, over the project's 25 MB limit for tracked files) is not tracked; the state
# of epoch 92 is in commit c286245 (the run reached epoch 128 on 2026-12-08 in a working tree;
# from 92 it repeats epochs 93-128 bit-identically). On a fresh clone, before the first rerun:
#   git show c286245:training/deeplabv3plus_seqsplit/resume.pt > training/deeplabv3plus_seqsplit/resume.pt
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/deeplabv3plus_seqsplit
RESUME=()
if [ -f "$RUN/resume.pt" ]; then RESUME=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch deeplabv3plus --backbone mobilenet_v2 \
    --data ../shared/data/camvid --out "$RUN" --height 352 --width 480 \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs 300 --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 2e-3 \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${RESUME[@]}" "$@"
