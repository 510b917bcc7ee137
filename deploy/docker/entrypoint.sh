#!/usr/bin/env bash
# The image's entry point. Without arguments: one cluster member,
#   tailguard node --config $TAILGUARD_CONFIG --roles $TAILGUARD_ROLES [--device $TAILGUARD_DEVICE]
# With arguments: that tailguard command (status, tune, train, ...).
set -euo pipefail
if [ $# -gt 0 ]; then
  exec tailguard "$@"
fi
: "${TAILGUARD_ROLES:?set TAILGUARD_ROLES (controller, learner, rollout; comma-separated)}"
: "${TAILGUARD_CONFIG:?set TAILGUARD_CONFIG (the HOCON file)}"
args=(node --config "$TAILGUARD_CONFIG" --roles "$TAILGUARD_ROLES")
if [ -n "${TAILGUARD_DEVICE:-}" ]; then
  args+=(--device "$TAILGUARD_DEVICE")
fi
exec tailguard "${args[@]}"
