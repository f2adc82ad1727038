#!/usr/bin/env bash
# `cpex run` on the real binary: the example gateway end to end (result
# lines, error lines with their line numbers, the summary on stderr, exit
# codes), context ids pairing pre and post hooks, --hook, standard input,
# the readable form, and bad input that must never crash it.
#   bash test_cli_run.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# pycheck NAME FILE SCRIPT: run python assertions over the JSON lines of FILE
# (as `lines`, a list of dicts; `raw` the text). The script prints "FAIL ..."
# lines for failures and the number of checks it passed on its last line.
pycheck() {
  local name="$1" file="$2" script="$3" res
  res="$(python3 - "$file" "$src" <<PY
import json, sys
raw = open(sys.argv[1]).read()
lines = [json.loads(l) for l in raw.splitlines()]
src = sys.argv[2]
ok = 0
def check(cond, what):
    global ok
    if cond: ok += 1
    else: print("FAIL $name: " + what)
$script
print(ok)
PY
)"
  if [ $? -ne 0 ]; then echo "FAIL $name: python raised:"; echo "$res"; fail=$((fail + 1)); return; fi
  local n; n="$(tail -n1 <<<"$res")"
  grep '^FAIL' <<<"$res" && fail=$((fail + $(grep -c '^FAIL' <<<"$res")))
  pass=$((pass + n))
}

gateway_yaml
grep -q "$build/plugins/libtool_allowlist.so" "$tmp/gateway.yaml" || { echo "FAIL rewriting gateway.yaml"; exit 1; }

# ---- the example requests, --json ------------------------------------------
expect "gateway --json exits 1 (the file has malformed lines)" 1 \
  "$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl" --json
cp "$tmp/out" "$tmp/gateway.jsonl"
has "summary on stderr" "$err" '^summary: 32 requests, 23 allowed, 5 denied, 4 errors, 2 soft errors, [0-9.]+ ms$'
hasnt "no summary on stdout" "$out" 'summary'
pycheck "gateway results" "$tmp/gateway.jsonl" '
req = [l for l in open(src + "/examples/requests.jsonl").read().splitlines()]
check(len(lines) == 32, "32 result lines, got %d" % len(lines))
errs = [l for l in lines if "error" in l]
bad_text = [req[e["line"] - 1] for e in errs]
check(len(errs) == 4, "4 error lines, got %d" % len(errs))
check(bad_text[0].endswith("[") and "\"hok\"" in bad_text[1] and "robot" in bad_text[2] and "\"name\"" not in bad_text[3],
      "error lines point at the malformed input lines: %s" % [e["line"] for e in errs])
check(all(set(e) == {"line", "error"} for e in errs), "error lines have only line and error")
check("invalid JSON at column" in errs[0]["error"], "truncated line: " + errs[0]["error"])
check("unknown key \x27hok\x27 (did you mean \x27hook\x27?)" in errs[1]["error"], errs[1]["error"])
check("role" in errs[2]["error"] and "robot" in errs[2]["error"], errs[2]["error"])
check("content[0].content.name" in errs[3]["error"], errs[3]["error"])
res = [l for l in lines if "error" not in l]
for l in res:
    check(req[l["line"] - 1].startswith("{"), "line %d is a request" % l["line"])
    check(l["decision"] in ("allow", "deny"), "decision")
    check(isinstance(l["errors"], list) and isinstance(l["payload"], dict), "errors and payload")
    check(("violation" in l) == (l["decision"] == "deny"), "violation exactly on deny")
    check(l["no_plugin_ran"] is False, "the gateway serves every hook of the requests")
by = {}
for l in res: by.setdefault((l.get("context"), l["hook"].split(".")[1]), []).append(l)
def one(ctx, hook):
    return by[(ctx, hook)][0]
r = one("req-1", "tool_pre_invoke")
check(r["decision"] == "allow" and r["payload_modified"] is False, "plain search allowed unmodified")
check(r["extensions"]["http"]["response_headers"] == {"x-cpex-gateway": "example/1.0"}, "header added: %s" % r.get("extensions"))
check(r["extensions"]["security"]["labels"] == ["gateway-checked"], "label added")
check(r["payload"]["content"][0]["content"]["name"] == "search_docs", "payload echoed")
d = one("req-3", "tool_pre_invoke")
check(d["decision"] == "deny" and d["violation"]["code"] == "tool_not_allowed", "delete_repo denied")
check("delete_repo" in d["violation"]["reason"] and d["violation"]["details"]["tool"] == "delete_repo", "violation names the tool")
check(d["violation"]["plugin"] == "tool-allowlist", "violation names the plugin")
check("extensions" not in d, "a denied call changes no extensions")
check(one("req-3", "tool_post_invoke")["decision"] == "deny", "its result is denied too")
check(one("req-4", "tool_pre_invoke")["violation"]["code"] == "tool_not_allowed", "run_shell denied")
s = one("req-5", "tool_pre_invoke")
args = s["payload"]["content"][0]["content"]["arguments"]
check(s["payload_modified"] is True and args["to"] == "[EMAIL]" and "[PHONE]" in args["body"], "e-mail and phone redacted: %s" % args)
check(s["metadata"]["pii_redactions"] == {"email": 1, "phone": 1, "total": 2}, "redactions counted")
codes = [(e["plugin"], e["code"]) for e in s["errors"]]
check(codes == [("header-inject-unprivileged", "denied_write")] * 2, "unprivileged writes refused: %s" % codes)
check("x-unprivileged" not in json.dumps(s["extensions"]) and "should-not-appear" not in json.dumps(s["extensions"]), "refused writes not applied")
p = one("req-5", "tool_post_invoke")
check(p["payload"]["content"][0]["content"]["content"]["to"] == "[EMAIL]", "tool result redacted")
c = one("req-6", "tool_pre_invoke")["payload"]["content"][0]["content"]["arguments"]
check(c["card"] == "[CARD]" and "4111 1111 1111 1112" in c["note"], "Luhn-valid card redacted, invalid kept: %s" % c)
t = one("req-7", "tool_pre_invoke")["payload"]["content"][0]["text"]
check("[EMAIL]" in t and "[PHONE]" in t, "text part redacted: " + t)
rl = [one("req-%d" % i, "tool_pre_invoke") for i in range(8, 12)]
check([x["decision"] for x in rl] == ["allow"] * 3 + ["deny"], "burst of 3 then rate limited")
v = rl[3]["violation"]
check(v["code"] == "rate_limited" and v["details"]["retry_after_ms"] > 0 and v["details"]["subject"] == "dave", "retry-after detail: %s" % v)
check(one("req-12", "tool_pre_invoke")["decision"] == "allow", "budget is per tool")
check(one("req-13", "tool_pre_invoke")["decision"] == "allow", "anonymous caller allowed")
nc = by[(None, "tool_post_invoke")][0]
check(nc["violation"]["code"] == "tool_result_unapproved" and "context" not in nc, "result without context denied")
for ctx in ("req-1", "req-2", "req-12", "req-14", "req-15", "req-16"):
    check(one(ctx, "tool_post_invoke")["decision"] == "allow", "post of %s allowed through its context" % ctx)
'
# Execution records: on by default in `cpex run`, one per plugin call.
pycheck "execution records" "$tmp/gateway.jsonl" '
res = [l for l in lines if "error" not in l]
check(all(isinstance(l.get("executions"), list) and l["executions"] for l in res), "every result has executions")
by = {(l.get("context"), l["hook"]): l for l in res}
d = by[("req-3", "cmf.tool_pre_invoke")]["executions"]
check([x["plugin_name"] for x in d] == ["tool-allowlist"], "a deny stops the records: %s" % d)
check(d[0]["status"] == "completed" and d[0]["requested_allow"] is False and d[0]["effective_allow"] is False, "deny record")
check(d[0]["error_code"] == "tool_not_allowed" and "delete_repo" in d[0]["reason"], "deny code and reason")
check(d[0]["config_keys"] == ["allow", "verify_results"], "config key names: %s" % d[0]["config_keys"])
check(d[0]["plugin_kind"].startswith("lib:") and d[0]["hook_name"] == "cmf.tool_pre_invoke", "kind and hook")
a = by[("req-5", "cmf.tool_pre_invoke")]["executions"]
check([x["plugin_name"] for x in a] == ["tool-allowlist", "rate-limit", "header-inject", "header-inject-unprivileged", "pii-redact"], "in execution order: %s" % [x["plugin_name"] for x in a])
check(a[4]["mode"] == "transform" and a[4]["payload_modified"] is True and a[4]["applied"] is True, "the redaction applied")
check(a[2]["extensions_modified"] is True and a[3]["extensions_modified"] is False, "the refused writes did not apply")
check(all(x["duration_ns"] >= 0 and x["start_unix_ns"] > 1.6e18 for x in a), "timed")
check(not any(x["plugin_name"] == "audit-log" for l in res for x in l["executions"]), "the sink is not a handler")
'
# The audit log is a sink: one line per verdict, the denied requests too.
if [ -f "$tmp/audit.jsonl" ]; then
  pycheck "audit log" "$tmp/audit.jsonl" '
check(len(lines) == 28, "28 audit lines (every request that was processed), got %d" % len(lines))
check(all(l["plugin"] == "audit-log" and l["decision"] in ("allow", "deny") for l in lines), "audit lines")
deny = [l for l in lines if l["decision"] == "deny"]
check(len(deny) == 5, "the 5 denied requests are in the log, got %d" % len(deny))
d = [l for l in deny if l.get("request_id") == "req-3" and l["hook"] == "cmf.tool_pre_invoke"]
check(len(d) == 1 and d[0]["violation"]["code"] == "tool_not_allowed" and d[0]["violation"]["plugin"] == "tool-allowlist", "the deny and its violation: %s" % d)
check(d and d[0]["executions"][0]["plugin"] == "tool-allowlist" and d[0]["executions"][0]["effective"] == "deny", "and what each plugin did")
check(any(l.get("violation", {}).get("code") == "rate_limited" for l in deny), "the rate-limited request")
check(any(l.get("subject") == "alice" and l.get("request_id") == "req-1" for l in lines), "subject and request id recorded")
check(not any("jane.doe@example.com" in json.dumps(l) for l in lines), "no PII in the audit log")
'
else
  echo "FAIL audit log not written"; fail=$((fail + 1))
fi

# ---- the readable form --------------------------------------------------------
expect "gateway readable" 1 "$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl"
has "readable allow" "$out" '^line [0-9]+  cmf.tool_pre_invoke  \[req-1\]  ALLOW$'
has "readable deny" "$out" "^line [0-9]+  cmf.tool_pre_invoke  \[req-3\]  DENY  tool_not_allowed: tool 'delete_repo' is not allowed by the allowlist \(plugin tool-allowlist\)$"
has "readable details" "$out" '^ +details: \{"tool":"delete_repo"'
has "readable payload" "$out" '^ +payload modified: .*\[EMAIL\]'
has "readable extensions" "$out" '^ +extensions changed: .*x-cpex-gateway'
has "readable metadata" "$out" '^ +metadata: .*pii_redactions'
has "readable soft error" "$out" "^ +soft error: plugin header-inject-unprivileged \[denied_write\]: .*write_headers"
has "readable error line" "$out" "^line [0-9]+  error: unknown key 'hok' \(did you mean 'hook'\?\)$"
has "readable summary" "$err" '^summary: 32 requests'
hasnt "no per-plugin lines without --verbose" "$out" '^ +plugin tool-allowlist \('

# ---- records under --verbose, --stats, --no-executions ---------------------------
expect "gateway --verbose --stats" 1 "$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl" --verbose --stats
has "verbose deny record" "$out" "^ +plugin tool-allowlist \(sequential\): completed, deny -> deny, [0-9.]+ us, tool_not_allowed: tool 'delete_repo'"
has "verbose transform record" "$out" '^ +plugin pii-redact \(transform\): completed, allow -> allow, [0-9.]+ us, changed payload$'
has "stats table header" "$err" '^stats: per plugin and hook'
has "stats row" "$err" '^  tool-allowlist +cmf.tool_pre_invoke +16 +14 +2 +0 +0 +[0-9.]+ +[0-9.]+$'
has "stats sink row" "$err" '^  sink audit-log +cmf.tool_pre_invoke +16 +16 '
has "stats hook row" "$err" '^  hook cmf.tool_pre_invoke: 16 invokes, 3 denied$'
has "stats audit queue" "$err" '^  audit queue: 28 verdicts handed over, 28 delivered, 0 dropped$'
expect "--no-executions" 1 "$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl" --json --no-executions
hasnt "no executions" "$out" '"executions"'

# ---- good input only: exit 0 -------------------------------------------------------
P='{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"c1","name":"search_docs","arguments":{}}}]}'
R='{"role":"tool","content":[{"content_type":"tool_result","content":{"tool_call_id":"c1","tool_name":"search_docs","content":"ok"}}]}'
{
  echo "{\"hook\":\"cmf.tool_pre_invoke\",\"payload\":$P,\"context\":\"a\"}"
  echo ""
  echo "# a comment"
  printf '%s\r\n' "{\"hook\":\"cmf.tool_post_invoke\",\"payload\":$R,\"context\":\"a\"}"
  echo "{\"hook\":\"cmf.tool_post_invoke\",\"payload\":$R,\"context\":\"b\"}"
  echo "{\"payload\":$P}"
} >"$tmp/good.jsonl"
expect "all lines processed: exit 0" 0 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/good.jsonl" --json --hook cmf.tool_pre_invoke
cp "$tmp/out" "$tmp/good.out"
has "good summary" "$err" '^summary: 4 requests, 3 allowed, 1 denied, 0 errors'
pycheck "contexts and --hook" "$tmp/good.out" '
check([l["line"] for l in lines] == [1, 4, 5, 6], "line numbers count blank and comment lines: %s" % [l["line"] for l in lines])
check(lines[1]["decision"] == "allow", "post with the pre hook context is allowed (CRLF line)")
check(lines[2]["decision"] == "deny" and lines[2]["violation"]["code"] == "tool_result_unapproved", "post with another context id is denied")
check(lines[3]["hook"] == "cmf.tool_pre_invoke" and lines[3]["decision"] == "allow", "--hook fills in a missing hook")
'

# ---- standard input, and a hook no plugin serves --------------------------------------
echo '{"hook":"custom.thing","payload":{"any":["json",1]}}' >"$tmp/custom.jsonl"
expect "stdin by default" 0 "$cpex" run "$tmp/gateway.yaml" --json <"$tmp/custom.jsonl"
pycheck "json payload" "$tmp/out" '
check(lines[0]["decision"] == "allow" and lines[0]["payload"] == {"any": ["json", 1]} and lines[0]["payload_modified"] is False, "JSON payload passes untouched: %s" % lines[0])
check(lines[0]["no_plugin_ran"] is True, "an unserved hook says no plugin ran: %s" % lines[0])
'
expect "stdin as -" 0 "$cpex" run "$tmp/gateway.yaml" --input - <"$tmp/custom.jsonl"
has "no plugin for the hook" "$out" 'custom.thing  ALLOW  \(no plugin ran for this hook\)'
# plugin_settings.unknown_hook: deny turns that allow into a deny, also in the readable form.
sed 's/^plugin_settings:/plugin_settings:\n  unknown_hook: deny/' "$tmp/gateway.yaml" >"$tmp/strict-hooks.yaml"
grep -q "unknown_hook: deny" "$tmp/strict-hooks.yaml" || echo "FAIL: the gateway has no plugin_settings to extend"
printf '%s\n' '{"hook":"custom.thing","payload":{}}' '{"hook":"CMF.TOOL_PRE_INVOKE","payload":{}}' >"$tmp/unknown.jsonl"
expect "unknown hooks denied: still exit 0" 0 "$cpex" run "$tmp/strict-hooks.yaml" --input "$tmp/unknown.jsonl" --json
pycheck "unknown_hook deny" "$tmp/out" '
for l in lines:
    check(l["decision"] == "deny" and l["violation"]["code"] == "unknown_hook" and l["no_plugin_ran"] is True, "denied as unknown: %s" % l)
check("CMF.TOOL_PRE_INVOKE" in lines[1]["violation"]["reason"], "the reason names the hook")
'
expect "unknown hooks denied, readable" 0 "$cpex" run "$tmp/strict-hooks.yaml" --input "$tmp/unknown.jsonl"
has "readable unknown_hook deny" "$out" "^line 2  CMF.TOOL_PRE_INVOKE  DENY  unknown_hook: no plugin is configured to run for hook 'CMF.TOOL_PRE_INVOKE'"
expect "empty input" 0 "$cpex" run "$tmp/gateway.yaml" --input /dev/null
has "empty summary" "$err" '^summary: 0 requests, 0 allowed, 0 denied, 0 errors'

# ---- bad input never crashes; every bad line gets its error line -------------------------
{
  echo 'not json at all'
  echo '[1,2,3]'
  echo '"just a string"'
  echo '{"hook":"cmf.tool_pre_invoke"}'
  echo '{"payload":{"role":"user","content":[]}}'
  echo '{"hook":"","payload":{}}'
  echo '{"hook":"cmf.tool_pre_invoke","payload":[]}'
  echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":"x"}}'
  echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[]},"extensions":{"bogus":1}}'
  echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[]},"context":7}'
  echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[]},"payload_type":"xml"}'
  echo '{"hook":"a","hook":"b","payload":{}}'
  printf '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[{"content_type":"text","text":"\xff\xfe"}]}}\n'
  printf '{"hook":"x\x00y","payload":{}}\n'
  printf '\x00\x01\x02\n'
  python3 -c 'print("{\"hook\":\"x\",\"payload\":" + "[" * 5000 + "]" * 5000 + "}")'
  python3 -c 'print("{\"hook\":\"cmf.tool_pre_invoke\",\"payload\":{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"" + "a@b.io " * 100000 + "\"}]}}")'
  printf '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[]}}'   # no final newline
} >"$tmp/bad.jsonl"
expect "bad lines: exit 1" 1 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/bad.jsonl" --json
cp "$tmp/out" "$tmp/bad.out"
has "bad summary" "$err" '^summary: 18 requests, [23] allowed, 0 denied, 1[56] errors'
pycheck "bad lines" "$tmp/bad.out" '
check([l["line"] for l in lines] == list(range(1, 19)), "one output line per input line, in order")
e = {l["line"]: l.get("error", "") for l in lines}
check(e[1].startswith("invalid JSON"), e[1])
check("must be a JSON object" in e[2], e[2])
check("must be a JSON object" in e[3] or e[3].startswith("invalid JSON"), e[3])
check("no \"payload\"" in e[4], e[4])
check("no hook" in e[5] and "--hook" in e[5], e[5])
check("\"hook\" must be a non-empty string" in e[6], e[6])
check("payload" in e[7] and "object" in e[7], e[7])
check(e[8].startswith("payload:") and "content" in e[8], e[8])
check(e[9].startswith("extensions:") and "bogus" in e[9], e[9])
check("\"context\" must be a non-empty string" in e[10], e[10])
check("payload_type" in e[11], e[11])
check("duplicate" in e[12], e[12])
check(e[13].startswith("invalid JSON") or e[13].startswith("payload"), "invalid UTF-8: " + e[13])
check(e[14] != "" and e[15] != "", "NUL bytes are errors")
check(lines[15].get("error", "") != "" or lines[15].get("decision") == "allow", "deep nesting handled")
check(lines[16].get("decision") == "allow" and lines[16]["metadata"]["pii_redactions"]["email"] == 100000, "a 700 KB line is processed")
check(lines[17].get("decision") == "allow", "a last line without newline is processed")
'

# ---- the configuration or the input cannot be used: exit 1 ------------------------------
expect "missing config" 1 "$cpex" run "$tmp/nope.yaml" --input /dev/null
has "missing config is named" "$err" "nope.yaml"
hasnt "missing config: no summary" "$err" '^summary'
printf 'plugins:\n  - name: broken\n    kind: "lib:%s/plugins/libtool_allowlist.so"\n    hooks: [cmf.tool_pre_invoke]\n' "$build" >"$tmp/broken.yaml"
expect "plugin rejects its config" 1 "$cpex" run "$tmp/broken.yaml" --input /dev/null
has "config rejection names plugin and cause" "$err" "plugin 'broken'.*config.allow is required"
has "points to check" "$err" "cpex check"
expect "missing input" 1 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/nope.jsonl"
has "missing input is named" "$err" "cannot open input '.*nope.jsonl'"

finish
