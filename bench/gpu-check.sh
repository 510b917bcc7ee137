#!/usr/bin/env bash
# The prepared device check (docs/gpu.md): one run on one GPU machine, about 8 minutes, one JSON
# summary on the last line of stdout (also in $OUT_DIR/summary.json). Steps, each under its own time
# limit, later ones skipped (and said so) once the run's deadline is near:
#   1. preflight: the card (nvidia-smi), java, mvn, the CUDA natives in ~/.m2, a Python with torch
#   2. the peer Python: a venv over the system's packages, filled with `pip install --no-index
#      --find-links` from the local wheel directories (`pip config list`); nothing is downloaded
#   3. the CUDA build: mvn -o -Pcuda package (DJL 0.33.0, libtorch 2.5.1 cu124)
#   4. parity on the GPU: DevicePlacementTest, DevicePathTest and DeviceSamplingTest (the GPU against
#      the CPU path) and
#      TransformersParityTest with -Dtailguard.test.device=gpu:0 (against transformers on CUDA torch;
#      log-probs within 1e-3 in F32, greedy tokens equal); counts from the surefire reports, skipped
#      tests counted apart, never as passed
#   5. bench rollout, dense against Block-Top-k: the small preset and Qwen3-0.6B's shapes, at
#      16K / budget 1024 and 32K / 2048
#   6. bench decode against transformers' generate on the same GPU (Qwen3-0.6B's shapes)
#   7. bench learner (Qwen3-0.6B's shapes)
#
# A figure that a step could not measure is reported missing (null, with the reason), never estimated.
#
#   bench/gpu-check.sh            the check (needs the GPU)
#   bench/gpu-check.sh --dry-run  on any machine: steps 1-3 as far as they go without a GPU (pip only
#                                 resolves; the CUDA build is packaged), then the profile's stack (DJL
#                                 0.33.0, libtorch 2.5.1) with the CPU natives of that libtorch, since
#                                 DJL loads the CUDA natives only where it finds a CUDA driver: the
#                                 test classes with the GPU tests skipped, and smoke runs of the three
#                                 bench commands at tiny sizes; the GPU steps are listed, not run
# Environment: GPU_CHECK_OUT (default bench/target/gpu-check), GPU_CHECK_DEVICE (default gpu:0),
# GPU_CHECK_SECONDS (the run's deadline, default 470).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=full
case "${1:-}" in
  "") ;;
  --dry-run) MODE=dry-run ;;
  *) echo "gpu-check.sh: unknown argument '$1' (only --dry-run)" >&2; exit 2 ;;
esac
OUT_DIR="${GPU_CHECK_OUT:-$ROOT/bench/target/gpu-check}"
DEVICE="${GPU_CHECK_DEVICE:-gpu:0}"
DEADLINE=$(( $(date +%s) + ${GPU_CHECK_SECONDS:-470} ))
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR/steps"
LOG="$OUT_DIR/log.txt"
: >"$LOG"
export TAILGUARD_BUILD_ARGS=-Pcuda
export OMP_WAIT_POLICY=PASSIVE

say() { echo "gpu-check: $*" | tee -a "$LOG" >&2; }

# record NAME KEY=VALUE...: one step's facts as a small JSON object (values: JSON literals or strings)
record() {
  local name="$1"; shift
  python3 - "$OUT_DIR/steps/$name.json" "$@" <<'PY'
import json, sys
out = {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
json.dump(out, open(sys.argv[1], "w"))
PY
}

# attach NAME FILE: the JSON object on the last line of FILE becomes the step's "result"
attach() {
  python3 - "$OUT_DIR/steps/$1.json" "$2" <<'PY'
import json, sys
path, src = sys.argv[1], sys.argv[2]
step = json.load(open(path))
lines = [l for l in open(src, errors="replace").read().splitlines() if l.startswith("{")]
step["result"] = json.loads(lines[-1]) if lines else None
json.dump(step, open(path, "w"))
PY
}

left() { echo $(( DEADLINE - $(date +%s) )); }

# run_step NAME LIMIT_SECONDS COMMAND...: runs under a time limit, logs, records ok/rc/seconds
run_step() {
  local name="$1" limit="$2"; shift 2
  local remaining; remaining=$(left)
  if [ "$remaining" -lt 20 ]; then
    say "$name: skipped, the run's deadline is near"
    record "$name" ok=false skipped='"the run deadline was reached before this step"'
    return 1
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  say "$name: $* (limit ${limit}s)"
  local t0; t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/steps/$name.out" 2>&1
  local rc=$?
  cat "$OUT_DIR/steps/$name.out" >>"$LOG"
  local secs=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then
    record "$name" ok=true seconds=$secs
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    say "$name: timed out after ${limit}s"
    record "$name" ok=false seconds=$secs rc=$rc skipped="\"timed out after ${limit}s\""
  else
    say "$name: failed (rc $rc); its output: $OUT_DIR/steps/$name.out"
    record "$name" ok=false seconds=$secs rc=$rc tail="$(tail -n 5 "$OUT_DIR/steps/$name.out" | tr '\n"\\' '   ' | cut -c1-600)"
  fi
  return $rc
}

# ---- 1. preflight -------------------------------------------------------------------------------
missing=()
card=null; driver=null
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  card="\"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)\""
  driver="\"$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)\""
else
  missing+=("a GPU (nvidia-smi finds none)")
fi
java_v=null; mvn_v=null
if command -v java >/dev/null 2>&1; then
  java_v="\"$(java -version 2>&1 | head -n 1 | tr -d '"')\""
else
  missing+=("java (JDK 17 or later)")
fi
if command -v mvn >/dev/null 2>&1; then
  mvn_v="\"$(mvn -v 2>/dev/null | head -n 1 | sed 's/\x1b\[[0-9;]*m//g')\""
else
  missing+=("mvn (Maven 3.8 or later)")
fi
NATIVES="$HOME/.m2/repository/ai/djl/pytorch/pytorch-native-cu124/2.5.1/pytorch-native-cu124-2.5.1-linux-x86_64.jar"
natives=null
if [ -f "$NATIVES" ]; then
  natives="\"$NATIVES\""
else
  missing+=("the CUDA natives $NATIVES (mvn -Pcuda dependency:resolve online, or copy ~/.m2 over; 2.5 GB)")
fi
# the dry run's CPU stand-in for them: libtorch 2.5.1's CPU natives under the same DJL
CPU_NATIVES="$HOME/.m2/repository/ai/djl/pytorch/pytorch-native-cpu/2.5.1/pytorch-native-cpu-2.5.1-linux-x86_64.jar"
CPU_STACK="-Pcuda -Dpytorch.native.artifact=pytorch-native-cpu"
if [ "$MODE" = dry-run ] && [ ! -f "$CPU_NATIVES" ]; then
  missing+=("libtorch 2.5.1's CPU natives $CPU_NATIVES (the dry run's stand-in; 110 MB)")
fi
record preflight mode="\"$MODE\"" device="\"$DEVICE\"" card="$card" driver="$driver" java="$java_v" mvn="$mvn_v" \
  cuda_natives="$natives" commit="\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\"" \
  date="\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"" cores="$(nproc)"
say "preflight: card $card, java $java_v, natives $natives; missing: ${missing[*]:-nothing}"

# ---- 2. the peer Python ---------------------------------------------------------------------------
# Wheel directories: pip's find-links, and the files/ beside each file:// simple index of pip's config.
wheel_dirs=()
while IFS= read -r line; do
  value="${line#*=}"; value="${value//\'/}"
  for v in $value; do
    case "$line" in
      *find-links*) [ -d "$v" ] && wheel_dirs+=("$v") ;;
      *index-url*) d="${v#file://}"; d="${d%/simple}"; d="${d%/simple/}"
                   [ "$d" != "$v" ] && [ -d "$d/files" ] && wheel_dirs+=("$d/files") ;;
    esac
  done
done < <(python3 -m pip config list 2>/dev/null)
links=()
for d in "${wheel_dirs[@]}"; do links+=(--find-links "$d"); done
VENV="$OUT_DIR/venv"
if [ "$MODE" = dry-run ]; then
  # a clean venv, and pip only resolves: shows the local wheels cover torch, transformers, safetensors
  python3 -m venv "$VENV" >>"$LOG" 2>&1
  run_step venv 120 "$VENV/bin/python" -m pip install --dry-run --no-index "${links[@]}" torch transformers safetensors
else
  # over python3's packages: a machine whose python3 has CUDA torch and transformers installs nothing.
  # python3 may itself be a venv, whose packages --system-site-packages would not show: a .pth
  # file puts its site directories on the new venv's path.
  python3 -m venv --system-site-packages "$VENV" >>"$LOG" 2>&1
  "$VENV/bin/python" - "$(python3 -c 'import site; print("\n".join(site.getsitepackages()))')" <<'PY' >>"$LOG" 2>&1
import sys, sysconfig, os
with open(os.path.join(sysconfig.get_paths()["purelib"], "_gpu_check_parent.pth"), "w") as f:
    f.write(sys.argv[1] + "\n")
PY
  run_step venv 180 "$VENV/bin/python" -m pip install --no-index "${links[@]}" torch transformers safetensors
fi
if [ "$MODE" = dry-run ]; then
  # the dry run's venv only resolved: the CPU tests use the caller's reference Python, if any
  PY="${TAILGUARD_PYTHON:-python3}"
else
  PY="$VENV/bin/python"
  export TAILGUARD_REQUIRE_TORCH=1
fi
torch_info=$("$PY" -c "import torch, transformers; print(torch.__version__, torch.cuda.is_available(), transformers.__version__)" 2>/dev/null || echo "none")
if [ "$MODE" = full ] && [ "$(echo "$torch_info" | cut -d' ' -f2)" != True ]; then
  missing+=("a CUDA torch with transformers in the peer Python ($torch_info)")
fi
# the torch pip would install (a "+cpu" one cannot be the GPU peer)
would=$(grep '^Would install' "$OUT_DIR/steps/venv.out" 2>/dev/null | grep -o ' torch-[0-9][^ ]*' | tr -d ' ')
record python wheel_dirs="$(printf '%s\n' "${wheel_dirs[@]}" | python3 -c 'import json,sys; print(json.dumps([l for l in sys.stdin.read().split() if l]))')" \
  torch_cuda_transformers="\"$torch_info\"" pip_would_install_torch="\"${would:-nothing}\""
export TAILGUARD_PYTHON="$PY"

# ---- 3. the CUDA build ----------------------------------------------------------------------------
can_build=true
[ -n "$java_v" ] && [ "$java_v" != null ] && [ "$mvn_v" != null ] && [ "$natives" != null ] || can_build=false
if $can_build; then
  rm -rf "$ROOT/bench/target/lib"   # no jar of another build (the CPU libtorch, DJL 0.36) may stay on the classpath
  run_step build 240 mvn -B -o -q -Pcuda -Dmaven.test.skip=true package
  # the launcher's stamp: bin/tailguard then runs this build as it is
  printf '%s' "$TAILGUARD_BUILD_ARGS" >"$ROOT/bench/target/.tailguard-built"
else
  record build ok=false skipped='"java, mvn or the CUDA natives are missing (see preflight)"'
fi

# surefire counts of one module's report of a class: tests, failures, errors, skipped
counts() {
  python3 - "$@" <<'PY'
import json, sys, glob
import xml.etree.ElementTree as ET
out = {}
for cls in sys.argv[1:]:
    files = glob.glob("*/target/surefire-reports/TEST-*." + cls + ".xml")
    if not files:
        out[cls] = None
        continue
    t = ET.parse(files[0]).getroot()
    n, f, e, s = (int(t.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    def why(sk):
        text = sk.get("message") or sk.text or ""
        first = (text.strip().splitlines() or [""])[0]
        return first.split("Assumption failed: ", 1)[-1][:160]
    skipped = [c.get("name") + ": " + why(c.find("skipped"))
               for c in t.findall("testcase") if c.find("skipped") is not None]
    out[cls] = {"tests": n, "passed": n - f - e - s, "failures": f, "errors": e, "skipped": s, "skipped_why": skipped}
print(json.dumps(out))
PY
}

TESTS=DevicePlacementTest,DevicePathTest,DeviceSamplingTest,TransformersParityTest
TG="$ROOT/bin/tailguard"

if [ "$MODE" = dry-run ]; then
  # ---- dry run: what a CPU can check -------------------------------------------------------------
  if $can_build; then
    # shellcheck disable=SC2086 # CPU_STACK is two arguments
    run_step parity_cpu 420 mvn -B -o $CPU_STACK test -pl model,rollout-workers -Dtest="$TESTS" \
      -Dsurefire.failIfNoSpecifiedTests=false
    export TAILGUARD_BUILD_ARGS="$CPU_STACK"   # the launcher rebuilds on the CPU stand-in
    record parity_cpu_counts counts="$(counts DevicePlacementTest DevicePathTest DeviceSamplingTest TransformersParityTest)"
    run_step smoke_rollout 120 "$TG" bench rollout --json --device cpu --preset tiny --batch 1 --context 256 --budget 64 \
      --new-tokens 4 --rounds 1 && attach smoke_rollout "$OUT_DIR/steps/smoke_rollout.out"
    run_step smoke_decode 120 "$TG" bench decode --json --device cpu --preset tiny --batch 1 --context 32 --new-tokens 4 \
      --pytorch off --transformers on --transformers-new-tokens 2 --transformers-cache dynamic \
      && attach smoke_decode "$OUT_DIR/steps/smoke_decode.out"
    run_step smoke_learner 120 "$TG" bench learner --json --device cpu --preset tiny --batch 1 --seq 16 --steps 1 --pytorch off \
      && attach smoke_learner "$OUT_DIR/steps/smoke_learner.out"
  fi
  record gpu_steps planned='"not run in --dry-run"' \
    parity="\"mvn -B -o -Pcuda test -pl model,rollout-workers -Dtest=$TESTS -Dtailguard.test.device=$DEVICE\"" \
    rollout='"bin/tailguard bench rollout --device gpu:0 --preset small|qwen3-0.6b --context 16384|32768 --budget 1024|2048 ..."' \
    decode='"bin/tailguard bench decode --device gpu:0 --preset qwen3-0.6b --pytorch off --transformers on ..."' \
    learner='"bin/tailguard bench learner --device gpu:0 --preset qwen3-0.6b --pytorch off ..."'
elif $can_build && [ "$card" != null ]; then
  # ---- 4. parity on the GPU ----------------------------------------------------------------------
  run_step parity 200 mvn -B -o -Pcuda test -pl model,rollout-workers -Dtest="$TESTS" \
    -Dsurefire.failIfNoSpecifiedTests=false -Dtailguard.test.device="$DEVICE"
  record parity_counts counts="$(counts DevicePlacementTest DevicePathTest DeviceSamplingTest TransformersParityTest)"
  # ---- 5. bench rollout: dense against sparse ----------------------------------------------------
  # batches sized for an 80 GB card: both modes' caches (2 x batch x context) and the weights fit
  # (preset context budget batch limit-seconds; Qwen3-0.6B's random weights take a while to draw)
  for spec in "small 16384 1024 8 60" "small 32768 2048 8 60" "qwen3-0.6b 16384 1024 4 90" "qwen3-0.6b 32768 2048 2 90"; do
    # shellcheck disable=SC2086 # the spec splits into its fields
    set -- $spec
    name="rollout_${1//[.-]/_}_$2_$3"
    run_step "$name" "$5" "$TG" bench rollout --json --device "$DEVICE" --preset "$1" --context "$2" --budget "$3" --batch "$4" \
      --new-tokens 32 --rounds 3 && attach "$name" "$OUT_DIR/steps/$name.out"
  done
  # ---- 6. bench decode against transformers on the same GPU --------------------------------------
  run_step decode 150 "$TG" bench decode --json --device "$DEVICE" --preset qwen3-0.6b --batch 8 --context 1024 --new-tokens 64 \
    --pytorch off --transformers on --transformers-new-tokens 64 --transformers-seconds 30 \
    && attach decode "$OUT_DIR/steps/decode.out"
  # ---- 7. bench learner --------------------------------------------------------------------------
  run_step learner 90 "$TG" bench learner --json --device "$DEVICE" --preset qwen3-0.6b --batch 4 --seq 512 --steps 3 --pytorch off \
    && attach learner "$OUT_DIR/steps/learner.out"
else
  record gpu_steps ok=false skipped="\"not run: missing ${missing[*]:-}\""
fi

# ---- the summary ----------------------------------------------------------------------------------
python3 - "$OUT_DIR" "$MODE" "${missing[@]}" <<'PY'
import glob, json, os, sys
out_dir, mode, missing = sys.argv[1], sys.argv[2], sys.argv[3:]
steps = {}
for f in sorted(glob.glob(os.path.join(out_dir, "steps", "*.json"))):
    steps[os.path.basename(f)[:-5]] = json.load(open(f))
def result(name, key):
    r = (steps.get(name) or {}).get("result") or {}
    return r.get(key)
pre = steps.get("preflight", {})
speedup16k = result("rollout_small_16384_1024", "speedup")
vs_peer = result("decode", "vs_transformers")
summary = {
    "check": "tailguard gpu-check", "mode": mode, "date": pre.get("date"), "commit": pre.get("commit"),
    "card": pre.get("card"), "driver": pre.get("driver"), "device": pre.get("device"),
    "missing": missing, "steps": steps,
    "acceptance": {
        "sparse_over_dense_16k_1024_small": speedup16k,
        "sparse_over_dense_16k_1024_qwen3_06b": result("rollout_qwen3_0_6b_16384_1024", "speedup"),
        "sparse_over_dense_ok": None if speedup16k is None else speedup16k >= 2.0,
        "decode_vs_transformers": vs_peer,
        "decode_vs_transformers_ok": None if vs_peer is None else vs_peer >= 0.8,
        "parity": (steps.get("parity_counts") or {}).get("counts"),
        "note": "null: not measured in this run (see steps and missing); never estimated",
    },
}
path = os.path.join(out_dir, "summary.json")
tmp = path + ".tmp"
json.dump(summary, open(tmp, "w"), indent=1)
os.replace(tmp, path)
print(json.dumps(summary))
PY
