#!/usr/bin/env bash
# Score a disjoint-split run (trained on 0001TP + 0016E5) on the unseen 0006R0 exactly as the
# bundle's recipe was scored (training/lraspp_seqsplit/eval_0006R0/README.md): the last epoch of
# its resume.pt written to last.pt, exported with the disjoint run's class bias (alpha 0.75) and
# labels at half size, fp32 and static INT8, then `evaluate --drivable-precision 0.97` on the
# 101 frames of 0006R0. Reports land in RUN/eval_0006R0/NAME{,_int8}_bias075_ds2_*.
# Usage: training/score_0006R0.sh RUN BACKBONE NAME
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1 BACKBONE=$2 NAME=$3
DATA=../shared/data/camvid
SP=.venv/bin/seg-perception
TMP=$(mktemp -d)
mkdir -p "$TMP/images" "$TMP/labels" "$RUN/eval_0006R0"
for f in "$DATA"/train/0006R0_*.png; do
    ln -s "$(realpath "$f")" "$TMP/images/"
    ln -s "$(realpath "$DATA/trainannot/$(basename "$f")")" "$TMP/labels/"
done
.venv/bin/python training/last_epoch.py "$RUN/resume.pt" "$RUN/last.pt"
COMMON=(--arch lraspp --backbone "$BACKBONE" --classes camvid
        --weights "$RUN/last.pt" --height 360 --width 480 --output labels_confidence
        --dynamic --output-downsample 2 --class-bias training/lraspp_seqsplit/class_bias_0.75.yaml)
$SP export "${COMMON[@]}" --out "$TMP/$NAME.onnx"
$SP export "${COMMON[@]}" --quantize int8 --calib "$DATA/train" --calib-count 64 \
    --out "$TMP/${NAME}_int8.onnx"
for name in "$NAME" "${NAME}_int8"; do
    $SP evaluate --model "$TMP/$name.onnx" --images "$TMP/images" --labels "$TMP/labels" \
        --drivable-precision 0.97 --report "$TMP/rep_$name"
    cp "$TMP/rep_$name/metrics.json" "$RUN/eval_0006R0/${name}_bias075_ds2_metrics.json"
    cp "$TMP/rep_$name/report.md" "$RUN/eval_0006R0/${name}_bias075_ds2_report.md"
done
echo "$TMP"
