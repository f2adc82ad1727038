#!/usr/bin/env bash
# Routing and reload on the real binary: `cpex check --tool ...` explains
# which plugins an entity's invokes run and why; `cpex run --watch` applies
# an edited configuration between request lines and says which generation
# each line ran on.
#   bash test_cli_routing.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
sed -e "s#\.\./build/plugins#$lib#g" -e "s#/tmp/cpex-routed-audit.jsonl#$tmp/audit.jsonl#" \
  "$src/examples/routed.yaml" >"$tmp/routed.yaml"

# ---- cpex check --tool ------------------------------------------------------------
expect "routed example checks out" 0 "$cpex" check "$tmp/routed.yaml" --tool lookup_customer
has "route named" "$out" "^  cmf.tool_pre_invoke: route 0 \(tool: lookup_customer, line [0-9]+, specificity 1000\); groups: groups.all, groups.pii$"
has "override shown" "$out" "^    2\. rate-limit +sequential +priority 20 +from route 0 \(its own instance: a config override\)$"
has "group plugin" "$out" "^    3\. pii-redact +transform +priority 50 +from groups.pii$"
has "post hook too" "$out" "^  cmf.tool_post_invoke: route 0"

expect "scope picks the scoped route" 0 "$cpex" check "$tmp/routed.yaml" --tool lookup_customer --scope tenant-a --hook cmf.tool_pre_invoke
has "scoped route" "$out" "route 1 \(tool: lookup_customer, line [0-9]+, specificity 1100, scope tenant-a\)"
hasnt "no redaction for tenant-a" "$out" "^    [0-9]\. pii-redact"
hasnt "one hook only" "$out" "cmf.tool_post_invoke:"

expect "unrouted tool" 0 "$cpex" check "$tmp/routed.yaml" --tool get_weather --hook cmf.tool_pre_invoke
has "no route" "$out" "cmf.tool_pre_invoke: no route; groups: groups.all"
has "says why" "$out" "no route matches this entity"

expect "check --json" 0 "$cpex" check "$tmp/routed.yaml" --resource "hr://x" --json
py "routing document" '
r = doc["routing"]
assert r["routing_enabled"] is True and r["entity"]["type"] == "resource", r
pre = [h for h in r["hooks"] if h["hook"] == "cmf.tool_pre_invoke"][0]
assert pre["route"] is None and [p["name"] for p in pre["plugins"]] == ["tool-allowlist", "audit-log"], pre
'
expect "tags" 0 "$cpex" check "$tmp/routed.yaml" --tool search_docs --tag pii --tag other --json
py "runtime tag joins its group" '
pre = [h for h in doc["routing"]["hooks"] if h["hook"] == "cmf.tool_pre_invoke"][0]
assert [p["name"] for p in pre["plugins"]] == ["tool-allowlist", "rate-limit", "pii-redact", "audit-log"], pre
assert doc["routing"]["entity"]["tags"] == ["pii", "other"]
'

expect "scope without an entity" 2 "$cpex" check "$tmp/routed.yaml" --scope a
has "usage says why" "$err" "describe an entity"
expect "two entities" 2 "$cpex" check "$tmp/routed.yaml" --tool a --llm b
expect "empty tool" 2 "$cpex" check "$tmp/routed.yaml" --tool=

# ---- cpex run --watch ---------------------------------------------------------------
cat >"$tmp/w.yaml" <<YAML
plugins:
  - name: allowlist
    kind: "lib:$lib/libtool_allowlist.so"
    hooks: [cmf.tool_pre_invoke]
    config: { allow: ["get_weather"] }
YAML
req='{"hook":"cmf.tool_pre_invoke","payload":{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"c1","name":"send_email","arguments":{}}}]}}'
mkfifo "$tmp/in"
"$cpex" run "$tmp/w.yaml" --watch --debounce 50 --json --input "$tmp/in" >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
exec 3>"$tmp/in"          # keep the pipe open between lines
echo "$req" >&3
# Wait (bounded) for a result line.
wait_lines() { for _ in $(seq 1 500); do [ "$(wc -l <"$tmp/run.out")" -ge "$1" ] && return 0; sleep 0.02; done; return 1; }
wait_lines 1 || echo "no first result"
# Allow send_email too: an atomic rename over the file.
sed -e 's/allow: \["get_weather"\]/allow: ["get_weather", "send_email"]/' "$tmp/w.yaml" >"$tmp/w.yaml.new"
mv "$tmp/w.yaml.new" "$tmp/w.yaml"
# The first "reloaded" is watch's own initial reload; wait for the second.
for _ in $(seq 1 500); do [ "$(grep -c "reloaded" "$tmp/run.err")" -ge 2 ] && break; sleep 0.02; done
echo "$req" >&3
wait_lines 2 || echo "no second result"
# A broken edit keeps the configuration in use.
echo "plugins: [ {name: x" >"$tmp/w.yaml"
for _ in $(seq 1 500); do grep -q "reload refused" "$tmp/run.err" && break; sleep 0.02; done
echo "$req" >&3
wait_lines 3 || echo "no third result"
exec 3>&-
for _ in $(seq 1 500); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
kill "$pid" 2>/dev/null
wait "$pid"; rc=$?
cp "$tmp/run.out" "$tmp/out"
out="$(cat "$tmp/run.out")"; err="$(cat "$tmp/run.err")"
if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else echo "FAIL run --watch exit $rc"; echo "$err"; fail=$((fail + 1)); fi
hasnt "no sanitizer report" "$err" "Sanitizer|runtime error:"
python3 - "$tmp/run.out" <<'PY' && pass=$((pass + 1)) || { echo "FAIL run --watch results:"; cat "$tmp/run.out"; cat "$tmp/run.err"; fail=$((fail + 1)); }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["decision"] for l in lines] == ["deny", "allow", "allow"], lines
g = [l["generation"] for l in lines]
assert g[1] == g[0] + 1 and g[2] == g[1], g
PY
has "reload reported" "$err" "cpex run: reloaded '.*w.yaml' \(generation [0-9]+\)"
has "refusal reported" "$err" "reload refused, the configuration in use stays '.*w.yaml' \(generation [0-9]+\): .*w.yaml:2:1: YAML syntax error"
hasnt "the file's text never echoed" "$err" "name: x"

finish
