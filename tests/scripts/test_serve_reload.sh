#!/usr/bin/env bash
# `cpex serve` live reload on the real binary: a change of CONFIG is picked
# up by the watcher (rewritten in place and renamed over), SIGHUP reloads,
# /healthz and /metrics report the generation, a broken file keeps the old
# configuration serving (and says why, without quoting the file), requests
# keep being answered during reloads, --no-watch leaves changes alone until
# SIGHUP, and the per-plugin metrics of the manager are in /metrics.
#   bash test_serve_reload.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

gateway_yaml
cfg="$tmp/live.yaml"
cp "$tmp/gateway.yaml" "$cfg"

call='{"hook":"cmf.tool_pre_invoke","payload":{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"1","name":"get_weather","arguments":{"city":"Oslo"}}}]}}'

# decision: the decision /v1/invoke gives for get_weather now.
decision() {
  curl -s -X POST -H 'content-type: application/json' --data "$call" "$serve_url/v1/invoke" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"])'
}
# generation: what /healthz reports.
generation() {
  curl -s "$serve_url/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'
}
# wait_generation NAME N: wait (at most 30 s) until the generation is N.
wait_generation() {
  local i g=""
  for i in $(seq 300); do
    g="$(generation)"
    [ "$g" = "$2" ] && { pass=$((pass + 1)); return 0; }
    sleep 0.1
  done
  echo "FAIL $1: generation $g, expected $2"; cat "$tmp/reload.err"; fail=$((fail + 1)); return 1
}
# allow_list PATTERNS: the tool allow-list of $cfg set to PATTERNS (YAML list
# items, comma-separated), written to $1.
allow_list() {
  python3 - "$cfg" "$2" "$1" <<'PY'
import re, sys
src, patterns, out = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src).read()
new, n = re.subn(r'allow: \[[^\]]*\]', 'allow: [' + patterns + ']', text, count=1)
assert n == 1, "no allow list in the gateway"
open(out, 'w').write(new)
PY
}

# ---- watched (the default) ---------------------------------------------------------
serve_start reload "$cfg" --debounce 100 || { finish; exit 1; }
serve_ready reload
g0="$(generation)"
[ -n "$g0" ] && pass=$((pass + 1)) || { echo "FAIL healthz has a generation"; fail=$((fail + 1)); }
[ "$(decision)" = allow ] && pass=$((pass + 1)) || { echo "FAIL get_weather allowed at first"; fail=$((fail + 1)); }
has "ready line names the generation and SIGHUP" "$(cat "$tmp/reload.err")" "ready: .* generation $g0; a change of the file or SIGHUP reloads"

# rewritten in place: get_weather is no longer allowed
allow_list "$tmp/next.yaml" '"search_*"'
cat "$tmp/next.yaml" >"$cfg"
wait_generation "an edit in place is picked up" $((g0 + 1))
[ "$(decision)" = deny ] && pass=$((pass + 1)) || { echo "FAIL the edit took effect"; fail=$((fail + 1)); }
has "the reload is logged" "$(cat "$tmp/reload.err")" "reloaded '.*live.yaml' \(the file changed\): generation $((g0 + 1))"

# renamed over (as editors and ConfigMaps do): allowed again
allow_list "$tmp/next.yaml" '"search_*", "get_weather"'
mv "$tmp/next.yaml" "$cfg"
wait_generation "a rename over the file is picked up" $((g0 + 2))
[ "$(decision)" = allow ] && pass=$((pass + 1)) || { echo "FAIL the rename took effect"; fail=$((fail + 1)); }

# a broken file: nothing changes, the old configuration serves on
cp "$cfg" "$tmp/good.yaml"
printf 'plugins:\n  - name: x\n    kind: "lib:%s/libtool_allowlist.so"\n    hooks: [cmf.tool_pre_invoke]\n    config: {allow: ["secret-token-123"]}\n    priorty: 3\n' "$lib" >"$cfg"
for i in $(seq 300); do grep -q "failed; generation" "$tmp/reload.err" && break; sleep 0.1; done
has "a broken file is reported" "$(cat "$tmp/reload.err")" "reloading '.*live.yaml' \(the file changed\) failed; generation $((g0 + 2)) serves on"
hasnt "the report quotes nothing of the file" "$(cat "$tmp/reload.err")" "secret-token-123"
[ "$(generation)" = $((g0 + 2)) ] && pass=$((pass + 1)) || { echo "FAIL the generation moved on a failure"; fail=$((fail + 1)); }
[ "$(decision)" = allow ] && pass=$((pass + 1)) || { echo "FAIL the old configuration still serves"; fail=$((fail + 1)); }
curl -s "$serve_url/healthz" >"$tmp/out"
py "healthz reports the failure" '
r = doc["reload"]
assert r["failed"] >= 1 and r["applied"] >= 2 and r["watching"] is True, r
assert "live.yaml:6:5" in r["last_error"] and "unknown key" in r["last_error"], r
assert "secret-token-123" not in r["last_error"] and "priorty" not in r["last_error"], r
assert doc["status"] == "ok", doc'
cp "$tmp/good.yaml" "$cfg"

# SIGHUP reloads (the same content: kept plugins, one more generation), and
# requests in flight meanwhile are all answered
for i in $(seq 200); do curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'content-type: application/json' --data "$call" "$serve_url/v1/invoke"; done >"$tmp/codes" &
load_pid=$!
sleep 0.5
g1="$(generation)"
kill -HUP "$serve_pid"
wait_generation "SIGHUP reloads" $((g1 + 1))
wait "$load_pid"
count "every request during the reload answered 200" "$(cat "$tmp/codes")" '^200$' 200
has "SIGHUP is logged" "$(cat "$tmp/reload.err")" "reloaded '.*live.yaml' \(SIGHUP\)"
kill -0 "$serve_pid" 2>/dev/null && pass=$((pass + 1)) || { echo "FAIL SIGHUP ended the server"; fail=$((fail + 1)); }

# /metrics: the generation, the reloads, and the manager's per-plugin families
curl -s "$serve_url/metrics" >"$tmp/metrics"
has "generation gauge" "$(cat "$tmp/metrics")" "^cpex_serve_config_generation $((g1 + 1))$"
has "applied reloads" "$(cat "$tmp/metrics")" '^cpex_serve_reloads_total\{result="applied"\} [0-9]+$'
has "failed reloads" "$(cat "$tmp/metrics")" '^cpex_serve_reloads_total\{result="failed"\} [1-9][0-9]*$'
has "per-plugin metrics" "$(cat "$tmp/metrics")" '^cpex_plugin_invocations_total\{plugin="tool-allowlist",hook="cmf.tool_pre_invoke"\} [1-9]'
serve_stop reload

# ---- --no-watch: a change waits for SIGHUP -------------------------------------------
cp "$tmp/gateway.yaml" "$cfg"
serve_start nowatch "$cfg" --no-watch --no-metrics || { finish; exit 1; }
serve_ready nowatch
g0="$(generation)"
allow_list "$tmp/next.yaml" '"search_*"'
mv "$tmp/next.yaml" "$cfg"
sleep 1.5
[ "$(generation)" = "$g0" ] && pass=$((pass + 1)) || { echo "FAIL --no-watch reloaded by itself"; fail=$((fail + 1)); }
[ "$(decision)" = allow ] && pass=$((pass + 1)) || { echo "FAIL --no-watch: the old policy serves"; fail=$((fail + 1)); }
kill -HUP "$serve_pid"
wait_generation "--no-watch: SIGHUP reloads" $((g0 + 1))
[ "$(decision)" = deny ] && pass=$((pass + 1)) || { echo "FAIL --no-watch: SIGHUP applied the file"; fail=$((fail + 1)); }
curl -s "$serve_url/metrics" >"$tmp/metrics"
hasnt "--no-metrics: no per-plugin families" "$(cat "$tmp/metrics")" '^cpex_plugin_invocations_total\{'
curl -s "$serve_url/healthz" >"$tmp/out"
py "healthz: not watching" 'assert doc["reload"]["watching"] is False, doc'
serve_stop nowatch

expect "--debounce without watching" 2 "$cpex" serve "$cfg" --no-watch --debounce 10
has "says why" "$err" "does not go with --no-watch"

finish
