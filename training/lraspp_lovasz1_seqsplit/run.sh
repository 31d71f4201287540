#!/usr/bin/env bash
# Issue 13: training/lraspp_lovasz_seqsplit with the labels' loss all Lovasz-softmax
# (`train --lovasz-weight 1`), the fine-tuning use its authors recommend (Berman et al. 2018:
# train with cross-entropy, then fine-tune with Lovasz alone). Same 20-epoch fine-tune of the
# finished disjoint LRASPP run and the same control (training/lraspp_finetune_seqsplit).
# Finished 2026-12-08 (2 threads, 111-125 s an epoch, AVX2 host): 0006R0 mIoU 43.7 at epoch 20
# (raw argmax; control 42.4), mean of epochs 10-20 43.5 against 42.5; scored like the bundle
# 43.9 mIoU, road 93.6, drivable 98.1 % / 96.2 % (control 43.5 / 93.7); with its own class-bias
# sweep (eval_0006R0/bias_sweep.txt) at most 44.0: not taken, see models/README.md. No weights
# kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_lovasz1_seqsplit exec training/lraspp_finetune_seqsplit/run.sh \
    --lovasz-weight 1 "$@"
