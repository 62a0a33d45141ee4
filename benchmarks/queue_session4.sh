#!/usr/bin/env bash
# The accuracy issue's 10-epoch runs, one after another (two at once run at half speed on 2 cores).
# Each run directory lands under results/; a stopped run continues with `sepspec train --resume DIR`.
set -u
DATA=${DATA:-../shared/data/cifar-10-python.tar.gz}
for job in "$@"; do            # job: SPEC_NAME:SEED, e.g. residual:0
  name=${job%%:*}; seed=${job##*:}
  out=results/$name-10ep-seed$seed
  if [ -f "$out/state.json" ]; then
    .venv/bin/sepspec train --resume "$out"
  else
    .venv/bin/sepspec train specs/$name.yaml --seed "$seed" --data "$DATA" --out "$out"
  fi
done
