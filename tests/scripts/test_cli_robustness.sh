#!/usr/bin/env bash
# The robustness cases of the cpex command (docs/testing.md, "The cpex
# command"): output that cannot be written, a plugin that ends the process,
# text from plugins and configurations that must not reach a terminal raw,
# and the bounded context table of `cpex run`.
#   bash test_cli_robustness.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
gateway_yaml

P='{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"c1","name":"search_docs","arguments":{}}}]}'
pre() { echo "{\"hook\":\"cmf.tool_pre_invoke\",\"payload\":$P${1:+,\"context\":\"$1\"}}"; }
for i in 1 2 3; do pre; done >"$tmp/three.jsonl"

# ---- output that cannot be written: exit 1, and say what was lost -----------------
expect_full "run >/dev/full" 1 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/three.jsonl"
has "run names the lost result" "$err" '^cpex run: cannot write the result of line 1 to standard output: No space left on device$'
has "run stops" "$err" '^cpex run: stopped after line 1'
has "run summary counts what was done" "$err" '^summary: 1 request, 1 allowed'
expect_full "run --json >/dev/full" 1 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/three.jsonl" --json
has "run --json names the lost result" "$err" 'cannot write the result of line 1 to standard output'
printf 'not json\n' >"$tmp/bad.jsonl"
expect_full "run error line >/dev/full" 1 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/bad.jsonl"
has "error line lost" "$err" 'cannot write the result of line 1 to standard output'
expect_full "check >/dev/full" 1 "$cpex" check "$tmp/gateway.yaml"
has "check names the report" "$err" '^cpex check: cannot write the report to standard output: No space left on device$'
expect_full "check --json >/dev/full" 1 "$cpex" check "$tmp/gateway.yaml" --json
has "check --json names the report" "$err" '^cpex check: cannot write the report'
expect_full "inspect >/dev/full" 1 "$cpex" inspect "$lib/libcounter.so"
has "inspect names the description" "$err" '^cpex inspect: cannot write the description of the library to standard output'
expect_full "inspect --json >/dev/full" 1 "$cpex" inspect "$lib/libcounter.so" --json
expect_full "--help >/dev/full" 1 "$cpex" --help
has "--help names the help text" "$err" '^cpex: cannot write the help text to standard output'
expect_full "run --help >/dev/full" 1 "$cpex" run --help
has "run --help names the help text" "$err" '^cpex run: cannot write the help text'
expect_full "--version >/dev/full" 1 "$cpex" --version
# A usage error keeps its own code; standard error that fails is a failure too.
expect_full "usage error >/dev/full" 2 "$cpex" run
"$cpex" run "$tmp/gateway.yaml" --input "$tmp/three.jsonl" >/dev/null 2>/dev/full
rc=$?; [ "$rc" -eq 1 ] && pass=$((pass + 1)) || { echo "FAIL run 2>/dev/full: exit code $rc, expected 1"; fail=$((fail + 1)); }
# The same commands with working output still succeed.
expect "run to a file" 0 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/three.jsonl"
count "three results" "$out" '^line [0-9]+ ' 3

# ---- a plugin that calls exit(): the command did not finish, and says so ----------
# exit_yaml MODE CONFIG: a good plugin (counter) and the exiting one (quitter).
exit_yaml() {
  cat >"$tmp/exit.yaml" <<YAML
plugins:
  - name: counter
    kind: "lib:$lib/libcounter.so"
    hooks: [cmf.tool_pre_invoke]
    priority: 1
  - name: quitter
    kind: "lib:$lib/libexit_call.so"
    hooks: [cmf.tool_pre_invoke]
    mode: $1
    priority: 2
    config: $2
YAML
}
for i in 1 2 3 4; do pre; done >"$tmp/four.jsonl"
exit_yaml sequential '{at: 3}'
expect "exit(0) in a handler: exit 1" 1 "$cpex" run "$tmp/exit.yaml" --input "$tmp/four.jsonl" --json
count "the results before it are there" "$out" '^\{"line":[12],' 2
count "nothing after it" "$out" '.' 2
has "names plugin, line and hook" "$err" "^cpex run: did not finish: plugin 'quitter' \(sequential\), from $lib/libexit_call.so, ended the process \(it called exit\) while processing line 3 \(hook cmf.tool_pre_invoke\); the results of line 3 and later are missing$"
hasnt "no summary" "$err" '^summary'
exit_yaml sequential '{at: 1, status: 7}'
expect "exit(7) in a handler: exit 1" 1 "$cpex" run "$tmp/exit.yaml" --input "$tmp/four.jsonl"
has "any status" "$err" "plugin 'quitter' .* while processing line 1 "
exit_yaml fire_and_forget '{at: 2}'
expect "exit(0) on a worker thread: exit 1" 1 "$cpex" run "$tmp/exit.yaml" --input "$tmp/four.jsonl"
has "background plugin named" "$err" "^cpex run: did not finish: plugin 'quitter' \(fire_and_forget\), from $lib/libexit_call.so, ended the process"
exit_yaml sequential '{in: initialize}'
expect "exit(0) in initialize: run exits 1" 1 "$cpex" run "$tmp/exit.yaml" --input "$tmp/four.jsonl"
has "run: while initializing" "$err" "plugin 'quitter' .* while initializing the plugins; no request was processed$"
[ -z "$out" ] && pass=$((pass + 1)) || { echo "FAIL no results before initialize"; fail=$((fail + 1)); }
expect "exit(0) in initialize: check exits 1" 1 "$cpex" check "$tmp/exit.yaml"
has "check: while initializing" "$err" "^cpex check: did not finish: plugin 'quitter' .* while initializing the plugins; the report is missing$"
exit_yaml sequential '{in: shutdown}'
expect "exit(0) in shutdown: run exits 1" 1 "$cpex" run "$tmp/exit.yaml" --input "$tmp/four.jsonl"
count "all four results" "$out" '^line [0-9]+ ' 4
has "run: while shutting down" "$err" "plugin 'quitter' .* while shutting down the plugins; the summary is missing$"
expect "exit(0) in shutdown: check exits 1" 1 "$cpex" check "$tmp/exit.yaml"
has "check report was written" "$out" '^ok: 2 plugins'
has "check: while shutting down" "$err" "plugin 'quitter' .* while shutting down the plugins"
# Without the exiting plugin, the same input runs to its end.
expect "no exit: exit 0" 0 "$cpex" run "$tmp/gateway.yaml" --input "$tmp/four.jsonl"
hasnt "no guard message" "$err" 'did not finish'

finish
