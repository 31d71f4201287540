#!/usr/bin/env bash
# Score the finished fine-tune on the unseen 0006R0 exactly as the bundle's recipe was scored
# (training/score_0006R0.sh); reports land in eval_0006R0/undilated{,_int8}_bias075_ds2_*.
exec "$(dirname "$0")/../score_0006R0.sh" training/lraspp_undilated_seqsplit \
    mobilenet_v3_large_undilated undilated
