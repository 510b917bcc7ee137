#!/usr/bin/env bash
# A Tailguard cluster of N processes on loopback (config/cluster.conf), for trying the multi-node
# runtime on one machine and for the cluster tests.
#
#   deploy/local-cluster.sh start N [--dir DIR] [--config FILE] [--roles 'R1;R2;...'] [--set key=value ...]
#   deploy/local-cluster.sh status [--dir DIR]
#   deploy/local-cluster.sh stop [--dir DIR]
#
# start: node 1 gets the roles controller,learner (and rollout when N = 1), nodes 2..N rollout;
# --roles gives them per node, ';'-separated, the last one repeated. Every node gets free loopback
# ports (Artery, /metrics, Pekko Management; the admin endpoint on controller nodes) and the same
# checkpoint store (tailguard.train.out, default DIR/run). Logs, pid files and ports go under DIR
# (default runs/local-cluster), and the /metrics targets in DIR/prometheus-targets.json for
# deploy/prometheus/prometheus.yml. It prints one line per node on stdout once every node is up
# (a start that lost a port to another process meanwhile is retried on new ports, 3 attempts):
#   node I metrics http://127.0.0.1:PORT/metrics
# then waits until node 1 sees all N members Up (progress and the admin URL go to stderr).
# stop: SIGTERM to every node (each leaves the cluster through Pekko's coordinated shutdown), waits
# up to TAILGUARD_STOP_TIMEOUT seconds (default 60), then SIGKILL; removes the pid files.
#
# Environment: TAILGUARD_JAVA_OPTS (JVM options per node, default "-Xss4m -Xmx2g");
# TAILGUARD_CLASSPATH (run `java -cp` on it instead of bin/tailguard: the tests use their own
# classpath); JAVA (the java binary for TAILGUARD_CLASSPATH, default java); TAILGUARD_START_TIMEOUT
# (seconds for the nodes to come up, default 900: the first use of the embedded default trains it);
# OMP_NUM_THREADS (default: the cores divided among the nodes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "local-cluster: $*" >&2; exit 2; }
say() { echo "local-cluster: $*" >&2; }

usage() {
  sed -n '5,7p' "$0" | sed 's/^# //' >&2
  exit 2
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
n=""
if [ "$cmd" = start ]; then
  [ $# -ge 1 ] || usage
  n="$1"; shift
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "start: N must be a positive integer, got \"$n\""
fi
dir="$ROOT/runs/local-cluster"
config="$ROOT/config/cluster.conf"
roles_spec=""
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir="$2"; shift 2 ;;
    --config) [ $# -ge 2 ] || die "--config needs a value"; config="$2"; shift 2 ;;
    --roles) [ $# -ge 2 ] || die "--roles needs a value"; roles_spec="$2"; shift 2 ;;
    --set) [ $# -ge 2 ] || die "--set needs key=value"; [[ "$2" == *=* ]] || die "--set $2: expected key=value"
           sets+=(--set "$2"); shift 2 ;;
    *) die "unknown argument \"$1\" (see the header of $0)" ;;
  esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# A pid file's process, if it is still a live Tailguard node (never signal a recycled pid): the JVM,
# or bin/tailguard just before it execs the JVM.
live_pid() {
  local f="$1" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  # While a process execs (bin/tailguard into the JVM) its cmdline can read empty for a moment; a
  # zombie's stays empty.
  [ -n "$cmd" ] || { sleep 0.2; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"; }
  grep -qE 'io\.tailguard\.actors\.cli\.Main|bin/tailguard node' <<<"$cmd" || return 1
  echo "$pid"
}

stop_all() {
  local pids=() f pid deadline
  for f in "$dir"/node-*.pid; do
    [ -e "$f" ] || continue
    if pid="$(live_pid "$f")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  deadline=$(( $(date +%s) + ${TAILGUARD_STOP_TIMEOUT:-60} ))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop within ${TAILGUARD_STOP_TIMEOUT:-60} s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir"/node-*.pid
  # nothing left for Prometheus to scrape
  if [ -f "$dir/prometheus-targets.json" ]; then
    echo "[]" >"$dir/prometheus-targets.json.tmp" && mv "$dir/prometheus-targets.json.tmp" "$dir/prometheus-targets.json"
  fi
  say "stopped ${#pids[@]} node(s); logs in $dir"
}

# GET http://127.0.0.1:PORT/PATH with bash alone (no curl in slim images); prints the body.
http_get() {
  local port="$1" path="$2"
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets $port to a free loopback port not handed out before in this run (in this shell, not in a
# $(...) subshell, which would forget it and could give two nodes the same port).
taken=" "
free_port() {
  local p i
  for i in $(seq 1 200); do
    # below Linux's ephemeral range (32768-60999), so outgoing connections do not take it meanwhile
    p=$(( 20000 + RANDOM % 12000 ))
    if [[ "$taken" != *" $p "* ]] && ! port_in_use "$p"; then
      taken="$taken$p "
      port="$p"
      return 0
    fi
  done
  die "no free port found"
}

case "$cmd" in
  stop)
    stop_all
    exit 0
    ;;
  status)
    for f in "$dir"/node-*.ports; do
      [ -e "$f" ] || { say "no nodes in $dir"; exit 1; }
      i="$(basename "$f" .ports)"; i="${i#node-}"
      # shellcheck disable=SC1090
      . "$f"
      if pid="$(live_pid "$dir/node-$i.pid")"; then state="running (pid $pid)"; else state="stopped"; fi
      echo "node $i $state roles $ROLES metrics http://127.0.0.1:$METRICS/metrics artery $ARTERY"
    done
    exit 0
    ;;
  start) ;;
  *) usage ;;
esac

[ -f "$config" ] || die "--config: $config: no such file"
for f in "$dir"/node-*.pid; do
  [ -e "$f" ] || continue
  if live_pid "$f" >/dev/null; then die "a cluster is already running in $dir (stop it first)"; fi
done
rm -f "$dir"/node-*.pid "$dir"/node-*.ports "$dir"/node-*.log

IFS=';' read -r -a role_list <<<"${roles_spec:-}"
roles_of() {
  local i="$1"
  if [ ${#role_list[@]} -gt 0 ]; then
    local k=$(( i - 1 < ${#role_list[@]} ? i - 1 : ${#role_list[@]} - 1 ))
    echo "${role_list[$k]}"
  elif [ "$n" -eq 1 ]; then echo "controller,learner,rollout"
  elif [ "$i" -eq 1 ]; then echo "controller,learner"
  else echo "rollout"
  fi
}

java_opts="${TAILGUARD_JAVA_OPTS:--Xss4m -Xmx2g}"
# The launcher: bin/tailguard (built once here, not by N nodes at once; it reads
# TAILGUARD_JAVA_OPTS), or java on a given classpath.
if [ -n "${TAILGUARD_CLASSPATH:-}" ]; then
  read -r -a opts <<<"$java_opts"
  launch=("${JAVA:-java}" "${opts[@]}" -Dai.djl.offline=true -Dtailguard.home="$ROOT" -cp "$TAILGUARD_CLASSPATH" io.tailguard.actors.cli.Main)
  export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
else
  "$ROOT/bin/tailguard" --version >/dev/null
  launch=("$ROOT/bin/tailguard")
fi
cores="$(nproc 2>/dev/null || echo 2)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores / n > 0 ? cores / n : 1 ))}"

# Starts every node on fresh ports (never one handed out before in this run).
launch_all() {
  local i roles artery metrics mgmt admin seed="" args
  rm -f "$dir"/node-*.pid "$dir"/node-*.ports
  for i in $(seq 1 "$n"); do
    roles="$(roles_of "$i")"
    free_port; artery="$port"; free_port; metrics="$port"; free_port; mgmt="$port"
    admin=0
    if [[ ",$roles," == *",controller,"* ]]; then free_port; admin="$port"; fi
    [ -n "$seed" ] || seed="$artery"
    printf 'ROLES=%q\nARTERY=%s\nMETRICS=%s\nMANAGEMENT=%s\nADMIN=%s\n' "$roles" "$artery" "$metrics" "$mgmt" "$admin" >"$dir/node-$i.ports"
    # Ours first: the first --set of a key wins, so the ports and the seed are the ones printed; the
    # store's default comes after the user's, so theirs wins.
    args=(node --config "$config" --roles "$roles"
          --set "pekko.remote.artery.canonical.hostname=127.0.0.1"
          --set "pekko.remote.artery.canonical.port=$artery"
          --set "pekko.cluster.seed-nodes=[\"pekko://tailguard@127.0.0.1:$seed\"]"
          --set "tailguard.metrics.host=127.0.0.1" --set "tailguard.metrics.port=$metrics"
          --set "tailguard.admin.host=127.0.0.1" --set "tailguard.admin.port=$admin"
          --set "pekko.management.http.hostname=127.0.0.1" --set "pekko.management.http.port=$mgmt"
          "${sets[@]}"
          --set "tailguard.train.out=$dir/run")
    TAILGUARD_JAVA_OPTS="$java_opts" nohup "${launch[@]}" "${args[@]}" </dev/null >"$dir/node-$i.log" 2>&1 &
    echo $! >"$dir/node-$i.pid"
    say "node $i: roles $roles, artery $artery, log $dir/node-$i.log"
  done
}

fail() {
  say "$1"
  tail -n 30 "$2" >&2 || true
  stop_all
  exit 1
}
deadline=$(( $(date +%s) + ${TAILGUARD_START_TIMEOUT:-900} ))
# Waits until every node has printed its address (its ports are bound by then). A free port can be
# taken by another process between our check and the node's bind: such a start is retried on new
# ports (3 attempts); any other early exit fails.
started() {
  local i
  for i in $(seq 1 "$n"); do
    until grep -q '^node pekko://' "$dir/node-$i.log" 2>/dev/null; do
      # a node that printed its address between the two looks has started
      if ! live_pid "$dir/node-$i.pid" >/dev/null && ! grep -q '^node pekko://' "$dir/node-$i.log" 2>/dev/null; then
        if [ "$attempt" -lt 3 ] && grep -q 'Address already in use' "$dir/node-$i.log"; then
          say "node $i: a port was taken meanwhile; starting all nodes again on new ports"
          cp "$dir/node-$i.log" "$dir/node-$i.attempt-$attempt.log"
          stop_all
          return 1
        fi
        fail "node $i exited during start; its log:" "$dir/node-$i.log"
      fi
      [ "$(date +%s)" -lt "$deadline" ] || fail "node $i not up after ${TAILGUARD_START_TIMEOUT:-900} s; its log:" "$dir/node-$i.log"
      sleep 0.5
    done
  done
}
attempt=1
launch_all
until started; do
  attempt=$(( attempt + 1 ))
  launch_all
done
for i in $(seq 1 "$n"); do
  # shellcheck disable=SC1090
  . "$dir/node-$i.ports"
  echo "node $i metrics http://127.0.0.1:$METRICS/metrics"
  [ "$ADMIN" = 0 ] || say "admin http://127.0.0.1:$ADMIN (tailguard tune --admin http://127.0.0.1:$ADMIN key=value)"
done

# Prometheus' file-based discovery (deploy/prometheus/prometheus.yml reads it), written atomically.
{
  echo "["
  for i in $(seq 1 "$n"); do
    # shellcheck disable=SC1090
    . "$dir/node-$i.ports"
    printf '  {"targets": ["127.0.0.1:%s"], "labels": {"node": "%s", "roles": "%s"}}%s\n' \
      "$METRICS" "$i" "$ROLES" "$([ "$i" -lt "$n" ] && echo ,)"
  done
  echo "]"
} >"$dir/prometheus-targets.json.tmp"
mv "$dir/prometheus-targets.json.tmp" "$dir/prometheus-targets.json"

# The cluster is formed when node 1 sees every member Up.
# shellcheck disable=SC1090
. "$dir/node-1.ports"
until [ "$(http_get "$METRICS" /metrics 2>/dev/null | sed -n 's/^tailguard_cluster_members{status="up"} \([0-9]*\).*/\1/p')" = "$n" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "node 1 does not see $n members Up; its log:" "$dir/node-1.log"
  sleep 0.5
done
say "cluster of $n up; stop it with: $0 stop --dir $dir"
