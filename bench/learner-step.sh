#!/usr/bin/env bash
# The learner step of the main job's shape, timed (docs/reference.md, "learner-step.sh"): builds the
# project as bin/tailguard does, then runs bench/LearnerStep.java on its jars. Options go to it:
#   --checkpoint DIR|default  --steps N  --groups G  --group-size S  --micro-batch M
#   --prompt-min L  --prompt-max L  --completion C  --seed S
# JVM options from TAILGUARD_JAVA_OPTS (e.g. -Dtailguard.train.kernel=torch for libtorch's kernels).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/bin/tailguard" --version >/dev/null
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec java ${TAILGUARD_JAVA_OPTS:--Xss4m} -Dai.djl.offline=true -Dtailguard.home="$ROOT" \
  -cp "$ROOT/bench/target/tailguard-bench-0.1.0-SNAPSHOT.jar:$ROOT/bench/target/lib/*" \
  "$ROOT/bench/LearnerStep.java" "$@"
