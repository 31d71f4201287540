#!/usr/bin/env bash
# Issue 13, distillation: the finished disjoint LRASPP run (training/lraspp_seqsplit, epoch 300,
# 42.6 mIoU on 0006R0, raw argmax) fine-tuned with `--teacher` on the ensemble of the three
# finished disjoint runs (LRASPP, LRASPP-EMA, PSPNet-ResNet18: 45.1 mIoU on 0006R0 together,
# training/lraspp_seqsplit/ensemble_check.txt); every one trained on 0001TP + 0016E5 only, so
# 0006R0 stays unseen. Loss: half class-weighted cross-entropy, half KL to the teachers' mean
# softmax (T = 1). Same split, crop, scale and class weights as the run it starts from; a fresh
# AdamW at a fifth of its learning rate, 20 epochs. Its control without teachers, same
# everything else: training/lraspp_finetune_seqsplit/run.sh. Resumable: rerun to continue.
# Finished 2026-12-07 (median 204 s an epoch with 1 thread, AVX2 host; the control 91 s) and
# NOT TAKEN: 0006R0 mIoU (raw argmax) over epochs 10-20 averaged 43.0 against the control's 42.5;
# scored like the bundle (eval_0006R0/) 43.9 mIoU, road 93.6, drivable 98.7 % / 95.1 % against the
# control's 43.5 / 93.7 / 98.6 % / 95.4 %: a gain inside the 1.0 by which two runs of one recipe
# differ, for 2.2x the training time. last.pt (epoch 20) kept; resume.pt and best.pt not.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_distill_seqsplit
START=(--init training/lraspp_seqsplit/last.pt)
if [ -f "$RUN/resume.pt" ]; then START=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch lraspp --data ../shared/data/camvid --out "$RUN" \
    --train-sequences 0001TP,0016E5 --val-sequences 0006R0 \
    --epochs "${EPOCHS:-20}" --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 4e-4 \
    --teacher training/lraspp_seqsplit/last.pt --teacher training/lraspp_ema_seqsplit/last.pt \
    --teacher training/pspnet_seqsplit/best.pt \
    --threads "${THREADS:-1}" --val-every 2 --no-progress "${START[@]}" "$@"
