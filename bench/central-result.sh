#!/usr/bin/env bash
# The central result as one command: three arms of `tailguard train` from the same warm start with
# the same seeds, then `tailguard compare-runs` over them (docs/reference.md, "central-result.sh").
#
#   dense      the start schedule dense, the controller off, a float32 KV cache: every rollout
#              attends over everything, exactly
#   guarded    calibrated start at τ, the controller on (the tail guard, choosing schedule and, with
#              the configuration's kv-cache = choose, the KV cache); the calibration runs once,
#              before the arms (`train --calibrate-only`, the first seed), and every guarded run
#              starts from it: its minutes are reported beside the table, not in one arm's clock
#   unguarded  one fixed budget at every length, the controller off, a float32 KV cache: nothing
#              holds its tail at τ
#
# With --replicates R, each arm and seed runs R times: the same prompts in the same order, replicate 1
# sampling as a plain run does, replicate k >= 2 with tailguard.train.sampling-seed = 1000 * seed + k,
# into <arm>-s<seed>-r<k>/ (with its .json and .log). Two runs of one arm then differ in their draws
# (and, as any two runs, in the actors' timing), and how far the
# reference arm's replicates end apart is the noise a gap between arms is read against; compare-runs
# compares each run with the mean of the dense replicates of its seed.
#
# Every arm runs with the configuration file (default config/quickstart.conf) and the --set pairs
# given here; the arm's own keys win over them. Into OUT: <arm>-s<seed>/ (each run's directory,
# with run-record.json), <arm>-s<seed>.json (its `train --json` line), <arm>-s<seed>.log (its
# progress), calibration/ (the guarded arms' calibrated.conf, with calibration.json: its seconds),
# unguarded-<budget>.conf (the unguarded arm's schedule), compare/ (table.md and the
# plots), compare.json and command.txt (each invocation's command line, date, commit, host). An arm whose run record exists is done and is skipped, so the script can
# be run again after an interruption; an arm directory without one (a run cut off) is refused.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TG="$ROOT/bin/tailguard"

usage() {
  cat <<'EOF'
usage: bench/central-result.sh [--out DIR] [--seeds "S1 S2 ..."] [--steps N] [--sparse-steps N] [--config FILE]
                               [--tau T] [--unguarded-budget N] [--dense-layers L] [--arms "dense guarded unguarded"]
                               [--speedup-every N] [--replicates R] [--set key=value ...]
  --out DIR              where the runs and the comparison go (default runs/central)
  --seeds "S ..."        run seeds, one run per arm and seed (default "7 8")
  --steps N              learner steps per run (default: the configuration's tailguard.train.steps)
  --sparse-steps N       learner steps of the guarded and unguarded runs (default: --steps). More steps than
                         dense's let a faster arm show how far it gets in dense's wall time; the equal-step
                         comparison uses the steps all arms ran
  --config FILE          the configuration every arm starts from (default config/quickstart.conf)
  --tau T                the guarded arm's target p5 α; also the τ the others are judged by (default 0.86)
  --unguarded-budget N   the unguarded arm's fixed KV budget, a multiple of 16, at least 48 (default 64):
                         pick one whose p5 α sits clearly below τ at the task's lengths
  --dense-layers "[..]"  the unguarded schedule's dense layers (default "[0]": one fewer than the
                         quickstart's [0, 1], so that the copy's induction layer decodes sparsely)
  --arms "A ..."         a subset of the arms, in the order to run them (default "dense guarded unguarded")
  --speedup-every N      the sparse arms measure the rollout speedup every Nth lease (default 16: a
                         measuring lease also decodes densely, time the dense arm does not spend)
  --replicates R         runs of each arm and seed, the same prompts with other sampling seeds (default 1, at most 999):
                         replicate k >= 2 samples with tailguard.train.sampling-seed = 1000 * seed + k
  --set key=value        a configuration key for every arm (repeatable), e.g. --set tailguard.train.eval-every=10
EOF
}

ORIGINAL_ARGS=("$@")
OUT="runs/central"
SEEDS="7 8"
STEPS=""
SPARSE_STEPS=""
CONFIG="$ROOT/config/quickstart.conf"
TAU="0.86"
BUDGET="64"
DENSE_LAYERS="[0]"
ARMS="dense guarded unguarded"
SPEEDUP_EVERY="16"
REPLICATES="1"
SETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --sparse-steps) SPARSE_STEPS="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --tau) TAU="$2"; shift 2 ;;
    --unguarded-budget) BUDGET="$2"; shift 2 ;;
    --dense-layers) DENSE_LAYERS="$2"; shift 2 ;;
    --arms) ARMS="$2"; shift 2 ;;
    --speedup-every) SPEEDUP_EVERY="$2"; shift 2 ;;
    --replicates) REPLICATES="$2"; shift 2 ;;
    --set) SETS+=(--set "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "central-result.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bad() {
  echo "central-result.sh: $*" >&2
  exit 2
}
[ -f "$CONFIG" ] || bad "--config: $CONFIG: no such file"
[ -n "$SEEDS" ] || bad "--seeds: give at least one seed"
for s in $SEEDS; do [[ "$s" =~ ^-?(0|[1-9][0-9]*)$ ]] || bad "--seeds: not an integer (no leading zeros): $s"; done
[ -z "$STEPS" ] || [[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || bad "--steps: must be a positive integer, got $STEPS"
[ -z "$SPARSE_STEPS" ] || [[ "$SPARSE_STEPS" =~ ^[1-9][0-9]*$ ]] || bad "--sparse-steps: must be a positive integer, got $SPARSE_STEPS"
[[ "$BUDGET" =~ ^[0-9]+$ ]] && [ "$BUDGET" -ge 48 ] && [ $((BUDGET % 16)) -eq 0 ] \
  || bad "--unguarded-budget: must be a multiple of 16 and at least 48, got $BUDGET"
[[ "$REPLICATES" =~ ^[1-9][0-9]{0,2}$ ]] || bad "--replicates: must be an integer from 1 to 999, got $REPLICATES"
[[ "$SPEEDUP_EVERY" =~ ^[0-9]+$ ]] || bad "--speedup-every: must be an integer >= 0, got $SPEEDUP_EVERY"
for a in $ARMS; do
  case "$a" in dense|guarded|unguarded) ;; *) bad "--arms: unknown arm $a (dense, guarded, unguarded)" ;; esac
done

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# what produced this directory, for the figures' caption: the command, when, on which commit
{
  printf 'command:'; printf ' %q' "$0" "${ORIGINAL_ARGS[@]}"; printf '\n'
  echo "started: $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "host: $(uname -n), $(nproc 2>/dev/null || echo '?') cores"
} >> "$OUT/command.txt"
UNGUARDED_SCHEDULE="$OUT/unguarded-$BUDGET.conf"
cat > "$UNGUARDED_SCHEDULE.tmp" <<EOF
# The unguarded arm of bench/central-result.sh: one KV budget at every length, held by a controller
# that is switched off. Format: config/schedules/README.md.
tailguard.schedule {
  version = 1
  kind = fixed
  budget = $BUDGET
  dense-layers = $DENSE_LAYERS
}
EOF
mv "$UNGUARDED_SCHEDULE.tmp" "$UNGUARDED_SCHEDULE"

# The guarded arms' start: calibrated once from the warm start, as `train` would at its start.
CALIBRATED="$OUT/calibration/calibrated.conf"
FIRST_SEED="${SEEDS%% *}"
case " $ARMS " in
  *" guarded "*)
    if [ -f "$CALIBRATED" ]; then
      echo "central-result.sh: calibration is done ($CALIBRATED); reused" >&2
    else
      echo "central-result.sh: calibration ($(date -u +%H:%M:%S) UTC) ..." >&2
      "$TG" train --config "$CONFIG" --calibrate-only --set "tailguard.controller.schedule=calibrate" \
        --set "tailguard.controller.tau=$TAU" --set "tailguard.train.seed=$FIRST_SEED" --set "tailguard.train.out=$OUT/calibration" \
        "${SETS[@]}" --json > "$OUT/calibration.json.tmp" 2> "$OUT/calibration.log" \
        || { tail -n 20 "$OUT/calibration.log" >&2; echo "central-result.sh: calibration failed (log: $OUT/calibration.log)" >&2; exit 1; }
      mv "$OUT/calibration.json.tmp" "$OUT/calibration/calibration.json"
      tail -n 1 "$OUT/calibration/calibration.json" >&2
    fi
    ;;
esac

# The arm's own keys. `train` takes the first --set of a key, so these come before the shared ones.
arm_sets() {
  case "$1" in
    dense) ARM=(--set "tailguard.controller.schedule=" --set "tailguard.controller.adapt=off" --set "tailguard.rollout.kv-cache=float32") ;;
    guarded) ARM=(--set "tailguard.controller.schedule=$CALIBRATED" --set "tailguard.train.compare-schedule=$CALIBRATED"
      --set "tailguard.controller.adapt=on") ;;
    # the floor at the unguarded budget: a fixed schedule is placed on the controller's ladder, which
    # starts at min-budget (the quickstart's 256 would lift budget 64 to 256)
    unguarded) ARM=(--set "tailguard.controller.schedule=$UNGUARDED_SCHEDULE" --set "tailguard.controller.adapt=off"
      --set "tailguard.rollout.kv-cache=float32" --set "tailguard.controller.min-budget=$BUDGET") ;;
  esac
}

DIRS=()
LABELS=()
for seed in $SEEDS; do
  for rep in $(seq 1 "$REPLICATES"); do
    for arm in $ARMS; do
      name="$arm-s$seed"
      REPLICATE=()
      if [ "$rep" -gt 1 ]; then
        name="$name-r$rep"
        REPLICATE=(--set "tailguard.train.sampling-seed=$((1000 * seed + rep))")
      fi
      dir="$OUT/$name"
      DIRS+=("$dir")
      LABELS+=(--label "$arm")
      if [ -f "$dir/run-record.json" ]; then
        echo "central-result.sh: $name is done ($dir/run-record.json); skipped" >&2
        continue
      fi
      [ ! -e "$dir" ] || bad "$dir: a run directory without run-record.json (a run cut off?); remove it to run $name again"
      arm_sets "$arm"
      args=("${ARM[@]}")
      args+=(--set "tailguard.controller.tau=$TAU" --set "tailguard.train.seed=$seed" --set "tailguard.train.out=$dir"
        --set "tailguard.metrics.port=0" --set "tailguard.admin.port=0" "${REPLICATE[@]}")
      arm_steps="$STEPS"
      [ "$arm" = dense ] || [ -z "$SPARSE_STEPS" ] || arm_steps="$SPARSE_STEPS"
      [ -z "$arm_steps" ] || args+=(--set "tailguard.train.steps=$arm_steps")
      echo "central-result.sh: $name ($(date -u +%H:%M:%S) UTC) ..." >&2
      "$TG" train --config "$CONFIG" "${args[@]}" "${SETS[@]}" --set "tailguard.rollout.speedup-every=$SPEEDUP_EVERY" \
        --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
        || { tail -n 20 "$OUT/$name.log" >&2; echo "central-result.sh: $name failed (log: $OUT/$name.log)" >&2; exit 1; }
      tail -n 1 "$OUT/$name.json" >&2
    done
  done
done

REFERENCE=(--reference dense)
case " $ARMS " in *" dense "*) ;; *) REFERENCE=() ;; esac
"$TG" compare-runs --out "$OUT/compare" "${REFERENCE[@]}" "${LABELS[@]}" "${DIRS[@]}" --json > "$OUT/compare.json"
if [ -f "$OUT/calibration/calibration.json" ]; then
  secs="$(sed -n 's/.*"calibration_seconds":\([0-9.]*\).*/\1/p' "$OUT/calibration/calibration.json")"
  printf '\nThe guarded arms started from one calibration (%s), which took %s s before them (not in their clocks).\n' \
    "$CALIBRATED" "$secs" >> "$OUT/compare/table.md"
fi
cat "$OUT/compare/table.md"
echo "central-result.sh: $OUT/compare/table.md, plots in $OUT/compare/, summary in $OUT/compare.json" >&2
