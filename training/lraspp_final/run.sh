#!/usr/bin/env bash
# The final bundled model of issue 13: the schedule of training/lraspp_seqsplit (chosen on the
# sequence-disjoint split) trained on all 468 frames (train/ and val/ pooled, `--all-frames`).
# val/ is then seen in training, so no epoch is picked on it: final.pt holds the last epoch.
# Resumable: rerun this script and it continues from resume.pt exactly where it stopped.
# Finished (300 of 300 epochs) on 2026-12-02 after 4.6 h of CPU epochs over three sessions;
# final.pt is the bundled model's weights (see finalize.sh, eval/). resume.pt is not kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=training/lraspp_final
RESUME=()
if [ -f "$RUN/resume.pt" ]; then RESUME=(--resume "$RUN/resume.pt"); fi
exec .venv/bin/seg-perception train --arch lraspp --data ../shared/data/camvid --out "$RUN" \
    --all-frames --epochs 300 --crop 288x384 --scale 0.5-2.0 --batch-size 8 --lr 2e-3 \
    --threads "${THREADS:-1}" --val-every 10 --no-progress "${RESUME[@]}" "$@"
