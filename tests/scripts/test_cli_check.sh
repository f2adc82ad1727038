#!/usr/bin/env bash
# `cpex check` on the real binary: a good configuration (one line per
# plugin, exit 0, --json) and broken ones (every problem listed, each naming
# its plugin; exit 1).
#   bash test_cli_check.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gateway_yaml

# ---- the example gateway ----------------------------------------------------------
expect "gateway checks out" 0 "$cpex" check "$tmp/gateway.yaml"
count "one ok line per plugin" "$out" '^ok +' 6
for p in tool-allowlist rate-limit header-inject header-inject-unprivileged pii-redact; do
  has "line for $p" "$out" "^ok +$p: kind \"lib:$lib/lib[a-z_]+\.so\", library $lib/lib[a-z_]+\.so, reports [a-z-]+ [0-9]+\.[0-9]+\.[0-9]+, hooks \[cmf\.tool_pre_invoke.*\], mode [a-z_]+, priority [0-9]+$"
done
has "hooks wired" "$out" '^ok +tool-allowlist: .*hooks \[cmf.tool_pre_invoke, cmf.tool_post_invoke\], mode sequential, priority 10$'
has "transform mode" "$out" '^ok +pii-redact: .*mode transform, priority 50$'
has "the audit sink" "$out" "^ok +audit-log: kind \"lib:$lib/libaudit_log\.so\", library $lib/libaudit_log\.so, reports audit-log 1\.0\.0, hooks \[\], mode audit, priority [0-9]+$"
has "sink for every hook" "$out" '^ +audit-log: audit sink for the verdicts of every hook$'
has "final line" "$out" '^ok: 6 plugins, 6 ok, 0 failed, 0 problems$'

expect "gateway --json" 0 "$cpex" check "$tmp/gateway.yaml" --json
py "json document" '
assert doc["ok"] is True and doc["loaded"] is True and doc["problems"] == [], doc
names = [p["name"] for p in doc["plugins"]]
assert names == ["tool-allowlist", "rate-limit", "header-inject", "header-inject-unprivileged", "pii-redact", "audit-log"], names
rl = doc["plugins"][1]
assert rl["status"] == "ok" and rl["library"].endswith("/librate_limit.so") and rl["reported_name"] == "rate-limit", rl
assert rl["capabilities"] == ["read_subject"] and rl["on_error"] == "fail" and rl["timeout"] == 5, rl
assert doc["plugins"][5]["mode"] == "audit" and doc["plugins"][5]["hooks"] == [] and doc["plugins"][5]["audit_sink"] == "all", doc["plugins"][5]
assert all("audit_sink" not in p for p in doc["plugins"][:5])
'

# ---- every problem is reported, each naming its plugin ----------------------------------
cat >"$tmp/broken.yaml" <<YAML
plugins:
  - name: good-one
    kind: "lib:$lib/libsingle.so"
    hooks: [cmf.tool_pre_invoke]
  - name: no-such-library
    kind: "lib:$lib/libdoes_not_exist.so"
    hooks: [cmf.tool_pre_invoke]
  - name: allowlist-without-config
    kind: "lib:$lib/libtool_allowlist.so"
    hooks: [cmf.tool_pre_invoke]
  - name: limiter-bad-rate
    kind: "lib:$lib/librate_limit.so"
    hooks: [cmf.tool_pre_invoke]
    config: { max_per_second: -1 }
  - name: wrong-entry
    kind: "lib:$lib/libmulti_plugin.so?entry=maybe"
    hooks: [cmf.tool_pre_invoke]
  - name: not-a-library
    kind: "lib:$src/README.md"
    hooks: [cmf.tool_pre_invoke]
YAML
expect "broken config fails" 1 "$cpex" check "$tmp/broken.yaml"
has "problem count" "$out" '^problems \(5\):$'
has "missing library" "$out" "plugin 'no-such-library': .*libdoes_not_exist.so"
has "config rejected" "$out" "plugin 'allowlist-without-config': .*config.allow is required"
has "bad rate" "$out" "plugin 'limiter-bad-rate': .*max_per_second must be above 0"
has "unknown entry lists the entries" "$out" "plugin 'wrong-entry': .*maybe"
has "not a library" "$out" "plugin 'not-a-library': .*README.md"
has "problems carry file and line" "$out" "broken.yaml:[0-9]+:[0-9]+: plugin 'no-such-library'"
has "the good plugin is listed" "$out" "^created +good-one: .*libsingle.so"
count "failed plugins listed" "$out" '^FAILED +[a-z-]+: not loaded' 5
has "final line" "$out" '^FAILED: 6 plugins, 1 ok, 5 failed, 5 problems$'

expect "broken config --json" 1 "$cpex" check "$tmp/broken.yaml" --json
py "json problems" '
assert doc["ok"] is False and doc["loaded"] is False, doc
probs = {p["plugin"] for p in doc["problems"]}
assert probs == {"no-such-library", "allowlist-without-config", "limiter-bad-rate", "wrong-entry", "not-a-library"}, probs
assert all(p["file"].endswith("broken.yaml") and p["line"] > 0 and p["phase"] == "load" for p in doc["problems"]), doc["problems"]
st = {p["name"]: p["status"] for p in doc["plugins"]}
assert st["good-one"] == "created" and st["no-such-library"] == "FAILED", st
'

# ---- YAML problems: all of them, with did-you-mean --------------------------------------
cat >"$tmp/typos.yaml" <<YAML
plugins:
  - name: a
    kind: "lib:$lib/libsingle.so"
    hooks: [cmf.tool_pre_invoke]
    priorty: 5
  - name: b
    kind: "lib:$lib/libsingle.so"
    hooks: [cmf.tool_pre_invoke]
    mode: sequentail
YAML
expect "yaml typos" 1 "$cpex" check "$tmp/typos.yaml"
has "unknown key" "$out" "typos.yaml:5:.*plugin 'a'.*priorty.*priority"
has "bad mode" "$out" "typos.yaml:9:.*plugin 'b'.*sequentail"

# ---- a plugin whose initialize fails stays visible as FAILED ----------------------------
if [ -f "$lib/libinit_fail.so" ]; then
  printf 'plugins:\n  - name: fine\n    kind: "lib:%s/libsingle.so"\n    hooks: [cmf.tool_pre_invoke]\n  - name: flaky-backend\n    kind: "lib:%s/libinit_fail.so"\n    hooks: [cmf.tool_pre_invoke]\n' "$lib" "$lib" >"$tmp/init.yaml"
  expect "init failure" 1 "$cpex" check "$tmp/init.yaml"
  has "ok plugin" "$out" '^ok +fine: '
  has "failed plugin with reason" "$out" '^FAILED +flaky-backend: kind .*libinit_fail.so'
  has "init problem names plugin" "$out" "plugin 'flaky-backend': initialize failed"
  expect "init failure --json" 1 "$cpex" check "$tmp/init.yaml" --json
  py "json init failure" '
p = [x for x in doc["plugins"] if x["name"] == "flaky-backend"][0]
assert p["status"] == "FAILED" and p["reason"], p
assert doc["problems"][0]["phase"] == "initialize" and doc["problems"][0]["plugin"] == "flaky-backend", doc
'
fi

# ---- files that are not configurations -------------------------------------------------
expect "missing file" 1 "$cpex" check "$tmp/nope.yaml"
has "missing file named" "$out$err" 'nope.yaml'
printf 'plugins: [\n' >"$tmp/syntax.yaml"
expect "yaml syntax error" 1 "$cpex" check "$tmp/syntax.yaml"
has "syntax error located" "$out" 'syntax.yaml:[0-9]+'
printf '\x00\xff\xfe binary' >"$tmp/binary.yaml"
expect "binary file" 1 "$cpex" check "$tmp/binary.yaml"

finish
