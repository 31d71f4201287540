#!/usr/bin/env bash
# After the all-frames run has reached epoch 300: export final.pt as the bundle candidate (fp32
# and static INT8, labels + confidence fused, dynamic batch; each also with the class bias of
# alpha ALPHA chosen on 0006R0, see models/README.md) into OUT (default /tmp/final), score them and
# the current bundle on val (seen in training by the candidate, so only a sanity check) and on
# the committed samples, and time them. Copying the files into models/ is a separate,
# deliberate step (see models/README.md): this script never touches the bundle. RUN (default
# this folder) finalizes another all-frames run of the same recipe, e.g. training/lraspp_ema_final,
# and ALPHA (default 0.75) sets the class-bias share chosen for it on 0006R0. DOWNSAMPLE (default 2,
# the bundle since 2026-12-07) exports the labels at 1/DOWNSAMPLE of the input size
# (--output-downsample: a quarter of the model time for 0.06 mIoU on 0006R0; 1 = the full-size
# head of the 2026-12-02 bundle).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-training/lraspp_final}
OUT=${OUT:-/tmp/final}
ALPHA=${ALPHA:-0.75}
DOWNSAMPLE=${DOWNSAMPLE:-2}
DATA=../shared/data/camvid
SP=.venv/bin/seg-perception
grep -q '^epoch 300/300' "$RUN/train.log" || { echo "$RUN: the run has not reached epoch 300" >&2; exit 1; }
mkdir -p "$OUT"
COMMON=(--arch lraspp --classes camvid --weights "$RUN/final.pt" --height 360 --width 480
        --output labels_confidence --dynamic --output-downsample "$DOWNSAMPLE")
.venv/bin/python training/class_bias.py --data "$DATA" --all-frames --alpha "$ALPHA" \
    --out "$RUN/class_bias_$ALPHA.yaml"
BIAS=(--class-bias "$RUN/class_bias_$ALPHA.yaml")
$SP export "${COMMON[@]}" --out "$OUT/camvid_lraspp.onnx"
$SP export "${COMMON[@]}" --quantize int8 --calib "$DATA/train" --calib-count 64 \
    --out "$OUT/camvid_lraspp_int8.onnx"
$SP export "${COMMON[@]}" "${BIAS[@]}" --out "$OUT/camvid_lraspp_bias.onnx"
$SP export "${COMMON[@]}" "${BIAS[@]}" --quantize int8 --calib "$DATA/train" --calib-count 64 \
    --out "$OUT/camvid_lraspp_bias_int8.onnx"
for model in "$OUT"/camvid_lraspp*.onnx models/camvid_lraspp.onnx models/camvid_lraspp_int8.onnx; do
    name=$(basename "$(dirname "$model")")_$(basename "$model" .onnx)
    $SP evaluate --model "$model" --images "$DATA/val" --labels "$DATA/valannot" \
        --drivable-precision 0.98 --report "$OUT/val_$name"
    $SP evaluate --model "$model" --images data/samples/camvid/images \
        --labels data/samples/camvid/labels --drivable-precision 0.98 --report "$OUT/samples_$name"
done
$SP bench models "$OUT/camvid_lraspp_bias.onnx" "$OUT/camvid_lraspp_bias_int8.onnx" \
    models/camvid_lraspp.onnx --repeats 30 --json "$OUT/bench.json"
