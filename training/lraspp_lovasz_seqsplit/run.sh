#!/usr/bin/env bash
# Issue 13: does the Lovasz-softmax loss lift the thin classes on the unseen 0006R0? The same
# 20-epoch fine-tune of the finished disjoint LRASPP run (epoch 300, 42.6 mIoU on 0006R0) as its
# control training/lraspp_finetune_seqsplit (43.5 scored like the bundle), with the labels' loss
# 0.5 x class-weighted cross-entropy + 0.5 x Lovasz-softmax (`train --lovasz-weight 0.5`).
# Finished 2026-12-08 (2 threads, 97-125 s an epoch, AVX2 host): 0006R0 mIoU 42.9 at epoch 20
# (raw argmax; control 42.4), mean of epochs 10-20 42.9 against 42.5; scored like the bundle
# 43.8 mIoU, road 93.5, drivable 98.5 % / 95.5 % (control 43.5 / 93.7): not taken, see
# models/README.md. No weights kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_lovasz_seqsplit exec training/lraspp_finetune_seqsplit/run.sh \
    --lovasz-weight 0.5 "$@"
