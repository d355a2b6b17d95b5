#!/usr/bin/env bash
# Regenerate the committed results into runs/results-next (resumable; see README.md here).
# Two workers, one thread each, share the list: A takes the direct-mapping (FP32) runs and the
# plain-recipe study, B the rest; both share the device-model studies at the end.
# Order: the headline first (periphery GDC, then the ideal chip as its reference), then the paired
# parts (at 1 day, 1 month and 1 year: PARTS_TIMES_S), then the other grids.
set -euo pipefail
cd "$(dirname "$0")/../.."
NEXT=runs/results-next
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
common=(--threads 1)

case "${1:?A or B}" in
  A)
    $PY scripts/periphery_study.py "${common[@]}" --only main --models resnet32-fp32 --compensations gdc --out $NEXT/periphery
    $PY scripts/reproduce.py "${common[@]}" --results-only --results-dir $NEXT --only resnet32-fp32_gdc
    $PY scripts/periphery_study.py "${common[@]}" --only parts --models resnet32-fp32 --out $NEXT/periphery
    # the plain-recipe network's study (its runs/study-fp32-plain/model.pt must be on this machine);
    # not resumable, so it runs before the resumable grids that a session's end may cut
    [ -e $NEXT/studies/fp32_recipe.json ] || $PY scripts/recipe_study.py "${common[@]}" --out $NEXT/studies/fp32_recipe.json
    $PY scripts/reproduce.py "${common[@]}" --results-only --results-dir $NEXT --only resnet32-fp32_none
    $PY scripts/periphery_study.py "${common[@]}" --only main --models resnet32-fp32 --compensations adabs --out $NEXT/periphery
    # then help B with the device-model studies (a file B is writing is skipped)
    $PY scripts/studies.py "${common[@]}" --out $NEXT/studies
    ;;
  B)
    $PY scripts/periphery_study.py "${common[@]}" --only main --models resnet32-custom --compensations gdc --out $NEXT/periphery
    $PY scripts/reproduce.py "${common[@]}" --results-only --results-dir $NEXT --only resnet32-custom_gdc
    $PY scripts/periphery_study.py "${common[@]}" --only parts --models resnet32-custom --out $NEXT/periphery
    $PY scripts/reproduce.py "${common[@]}" --results-only --results-dir $NEXT --only resnet32-custom_adabs resnet32-custom_none
    $PY scripts/periphery_study.py "${common[@]}" --only main --models resnet32-custom --compensations adabs --out $NEXT/periphery
    # the clip/noise arms (custom training's ingredients; their runs/study-*/model.pt must be here);
    # not resumable, so before the resumable grids
    [ -e $NEXT/studies/clip_noise_ablation.json ] || \
      $PY scripts/ablation_study.py "${common[@]}" --out $NEXT/studies/clip_noise_ablation.json
    $PY scripts/studies.py "${common[@]}" --out $NEXT/studies
    ;;
esac
