#!/usr/bin/env bash
# Plugin state across replicas: two `cpex run` processes against one real
# redis-server share one rate-limit budget exactly (and, on the memory
# backend, do not); 8 threads in 2 processes lose no increment; `cpex
# check` says whether the backend answers; a Redis that is down does not
# stop a gateway from loading and serving (the limiter fails closed).
#   bash test_state_replicas.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redis.sh"

redis_start || exit 1

# requests N SUBJECT TOOL: N tool calls, one per line
requests() {
  for i in $(seq "$1"); do
    printf '{"hook":"cmf.tool_pre_invoke","payload":{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"c%d","name":"%s","arguments":{}}}]},"extensions":{"security":{"subject":{"id":"%s","type":"user"}}}}\n' "$i" "$3" "$2"
  done
}
# limiter_yaml FILE STATE_LINE: the rate limiter (25 calls per hour) with a state setting
limiter_yaml() {
  cat >"$1" <<YAML
plugin_settings:
$2
plugins:
  - name: rate-limit
    kind: "lib:$lib/librate_limit.so"
    hooks: [cmf.tool_pre_invoke]
    capabilities: [read_subject]
    config: { limit: 25, window_seconds: 3600 }
YAML
}
count_allow() { cat "$@" | grep -c '"decision":"allow"'; }

requests 40 alice search >"$tmp/alice.jsonl"

# ---- two replicas, one Redis: one budget ---------------------------------------
limiter_yaml "$tmp/redis.yaml" "  state: { backend: redis, url: \"redis://127.0.0.1:$redis_port/0\", prefix: \"gw:\" }"
"$cpex" run "$tmp/redis.yaml" --input "$tmp/alice.jsonl" --json >"$tmp/r1.out" 2>"$tmp/r1.err" &
p1=$!
"$cpex" run "$tmp/redis.yaml" --input "$tmp/alice.jsonl" --json >"$tmp/r2.out" 2>"$tmp/r2.err" &
p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && pass=$((pass + 1)) || { echo "FAIL replicas exit codes $rc1 $rc2"; cat "$tmp/r1.err" "$tmp/r2.err"; fail=$((fail + 1)); }
n="$(count_allow "$tmp/r1.out" "$tmp/r2.out")"
[ "$n" -eq 25 ] && pass=$((pass + 1)) || { echo "FAIL two replicas allowed $n calls, expected exactly 25"; fail=$((fail + 1)); }
n="$(cat "$tmp/r1.out" "$tmp/r2.out" | grep -c '"code":"rate_limited"')"
[ "$n" -eq 55 ] && pass=$((pass + 1)) || { echo "FAIL $n rate_limited denials, expected 55"; fail=$((fail + 1)); }
has "the counter is in Redis under prefix, namespace, key" "$(rcli --scan --pattern 'gw:rate-limit:*')" '^gw:rate-limit:search/alice$'
has "and holds every attempt" "$(rcli get 'gw:rate-limit:search/alice')" '^80$'
ttl="$(rcli ttl 'gw:rate-limit:search/alice')"
[ "$ttl" -gt 3500 ] && [ "$ttl" -le 3600 ] && pass=$((pass + 1)) || { echo "FAIL the window's ttl is $ttl"; fail=$((fail + 1)); }
# a third replica started later sees the spent budget
expect "a later replica" 0 "$cpex" run "$tmp/redis.yaml" --input "$tmp/alice.jsonl" --json
has "later replica: denied from the first call" "$(head -1 "$tmp/out")" '"code":"rate_limited"'
count "later replica: nothing allowed" "$out" '"decision":"allow"' 0

# ---- the memory backend: each process counts alone ------------------------------
limiter_yaml "$tmp/memory.yaml" "  state: { backend: memory }"
"$cpex" run "$tmp/memory.yaml" --input "$tmp/alice.jsonl" --json >"$tmp/m1.out" 2>/dev/null &
p1=$!
"$cpex" run "$tmp/memory.yaml" --input "$tmp/alice.jsonl" --json >"$tmp/m2.out" 2>/dev/null &
p2=$!
wait $p1 $p2
n="$(count_allow "$tmp/m1.out" "$tmp/m2.out")"
[ "$n" -eq 50 ] && pass=$((pass + 1)) || { echo "FAIL memory backend: $n allowed, expected 25 per process"; fail=$((fail + 1)); }

# ---- 8 threads in 2 processes: no increment lost --------------------------------
cat >"$tmp/probe.yaml" <<YAML
plugin_settings:
  state: { backend: redis, url: "redis://127.0.0.1:$redis_port/0", pool_size: 4 }
plugins:
  - name: probe
    kind: "lib:$lib/libstate_probe.so"
    hooks: [state.op]
    timeout: 120
    state_namespace: counters
YAML
fan='{"hook":"state.op","payload":{"ops":[{"op":"fanout","key":"hits","threads":4,"count":500}]}}'
"$cpex" run "$tmp/probe.yaml" --input - --json <<<"$fan" >"$tmp/f1.out" 2>"$tmp/f1.err" &
p1=$!
"$cpex" run "$tmp/probe.yaml" --input - --json <<<"$fan" >"$tmp/f2.out" 2>"$tmp/f2.err" &
p2=$!
wait $p1 $p2
has "fanout 1 without failures" "$(cat "$tmp/f1.out")" '"failures":0'
has "fanout 2 without failures" "$(cat "$tmp/f2.out")" '"failures":0'
expect "read the counter" 0 "$cpex" run "$tmp/probe.yaml" --input - --json <<<'{"hook":"state.op","payload":{"ops":[{"op":"get","key":"hits"}]}}'
has "4000 increments from 8 threads in 2 processes" "$out" '"text":"4000"'
has "the shared namespace in Redis" "$(rcli get cpex:counters:hits)" '^4000$'

# ---- cpex check ------------------------------------------------------------------
expect "check with redis up" 0 "$cpex" check "$tmp/redis.yaml"
has "check: state answers" "$out" "^state +redis 127\.0\.0\.1:$redis_port db 0, prefix 'gw:' \(chosen by .*redis\.yaml\): answered a PING in [0-9.]+ ms$"
expect "check --json with redis up" 0 "$cpex" check "$tmp/redis.yaml" --json
py "check json: state" 'assert doc["state"]["backend"] == "redis" and doc["state"]["answers"] is True, doc["state"]'
redis_stop
expect "check with redis down still passes" 0 "$cpex" check "$tmp/redis.yaml"
has "check: state does not answer" "$out" "^state +redis 127\.0\.0\.1:$redis_port .*DOES NOT ANSWER: unavailable after [0-9.]+ ms: connecting to Redis: Connection refused"

# ---- Redis down when the gateway starts: it loads, serves, fails closed --------
expect "run with redis down" 0 "$cpex" run "$tmp/redis.yaml" --input "$tmp/alice.jsonl" --json
count "every call denied (on_state_error: deny)" "$out" '"code":"rate_limit_unavailable"' 40
count "the outage logged once" "$err" 'is unavailable' 1
sed -e 's/limit: 25, window_seconds: 3600/limit: 25, window_seconds: 3600, on_state_error: allow/' "$tmp/redis.yaml" >"$tmp/open.yaml"
expect "run with redis down, on_state_error: allow" 0 "$cpex" run "$tmp/open.yaml" --input "$tmp/alice.jsonl" --json
count "every call allowed" "$out" '"decision":"allow"' 40

finish
