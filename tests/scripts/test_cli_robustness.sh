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

# ---- text from elsewhere never reaches the terminal raw --------------------------
# clean NAME FILE LINES: FILE has exactly LINES lines, and none of the bytes
# that steer a terminal: no control byte but the newline, no DEL, nothing
# that is not UTF-8, no C1 control, no line separator or bidi control.
clean() {
  local res
  res="$(python3 - "$2" "$3" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
want = int(sys.argv[2])
problems = []
n = raw.count(b"\n")
if n != want:
    problems.append("%d lines, expected %d" % (n, want))
bad = [hex(b) for b in raw if (b < 0x20 and b != 0x0A) or b == 0x7F]
if bad:
    problems.append("control bytes %s" % bad[:5])
try:
    text = raw.decode("utf-8")
    steer = [hex(ord(c)) for c in text if 0x80 <= ord(c) <= 0x9F or ord(c) in (0x2028, 0x2029, 0x61C, 0x200E, 0x200F) or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]
    if steer:
        problems.append("terminal or bidi controls %s" % steer[:5])
except UnicodeDecodeError as e:
    problems.append("not UTF-8: %s" % e)
print("; ".join(problems))
PY
)"
  if [ -z "$res" ]; then pass=$((pass + 1)); else echo "FAIL $1: $res in:"; cat -A "$2" | head -30; fail=$((fail + 1)); fi
}
# A plugin named with a newline and a clear-screen sequence (YAML escapes),
# loaded from log_forge, which logs a forged "summary:" line with more
# escape sequences; a context id and a hook name from the input that do the same.
cat >"$tmp/forge.yaml" <<YAML
plugins:
  - name: "evil\nsummary: forged by the name\e[2J\u009b"
    kind: "lib:$lib/liblog_forge.so"
    hooks: [cmf.tool_pre_invoke]
YAML
{
  echo "{\"hook\":\"cmf.tool_pre_invoke\",\"payload\":$P,\"context\":\"ctx\\u001b[2J\\nsummary: forged by the context\"}"
  echo "{\"hook\":\"x\\u001b[2J\\nsummary: forged by the hook\",\"payload\":{}}"
  echo "{\"hook\":\"x\",\"payload\":{},\"hok\\nsummary: forged by a key\":1}"
  echo "{\"hook\":\"cmf.tool_pre_invoke\",\"payload\":{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"c1 \\u009b2J del \\u007f rlo \\u202e\"}]},\"extensions\":{\"custom\":{\"k\":1},\"security\":{\"subject\":{\"x\\n  summary: forged\":1,\"y\\u001b\":2}}}}"
} >"$tmp/forge.jsonl"
expect "run: forged text" 1 "$cpex" run "$tmp/forge.yaml" --input "$tmp/forge.jsonl"
clean "run stdout: one line per result, nothing raw" "$tmp/out" 4
clean "run stderr: log lines and the summary, nothing raw" "$tmp/err" 3
count "one summary" "$err" '^summary:' 1
count "both log lines escaped" "$err" "^cpex: warning: plugin 'evil\\\\nsummary: forged by the name\\\\x1b\[2J\\\\u009b': forged\\\\nsummary: 0 requests.*\\\\x1b\[2J\\\\u009b31m\\\\u202etxt\.exe\\\\xff$" 2
has "context escaped" "$out" '^line 1  cmf.tool_pre_invoke  \[ctx\\x1b\[2J\\nsummary: forged by the context\]  ALLOW$'
has "hook escaped" "$out" '^line 2  x\\x1b\[2J\\nsummary: forged by the hook  ALLOW  \(no plugin'
has "unknown key escaped" "$out" "^line 3  error: unknown key 'hok\\\\nsummary: forged by a key'"
has "model errors on one line" "$out" '^line 4  error: extensions: security.subject.x\\n  summary: forged: unknown key.*; security.subject.y\\x1b: unknown key'
expect "run --json: forged text" 1 "$cpex" run "$tmp/forge.yaml" --input "$tmp/forge.jsonl" --json
clean "run --json: nothing raw" "$tmp/out" 4
sed -i 's/"security":{"subject":{[^}]*}}//; s/,"extensions":{"custom":{"k":1},}//' "$tmp/forge.jsonl"
sed -i 's/,"extensions":{"custom":{"k":1},*}//' "$tmp/forge.jsonl"
expect "run: C1, DEL and RLO in a payload" 1 "$cpex" run "$tmp/forge.yaml" --input "$tmp/forge.jsonl" --json
clean "run --json: payload controls as \\u escapes" "$tmp/out" 4
python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
t = lines[3]["payload"]["content"][0]["text"]
assert t == "c1 \u009b2J del \u007f rlo \u202e", repr(t)
assert lines[0]["context"] == "ctx\x1b[2J\nsummary: forged by the context", lines[0]
' "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL --json keeps the values"; fail=$((fail + 1)); }

expect "check: forged name and log" 0 "$cpex" check "$tmp/forge.yaml"
clean "check stdout: nothing raw" "$tmp/out" 7
has "check plugin line escaped" "$out" '^ok +evil\\nsummary: forged by the name\\x1b\[2J\\u009b: kind "lib:'
has "check warning escaped" "$out" "^  - plugin 'evil\\\\nsummary: forged by the name\\\\x1b\[2J\\\\u009b': forged\\\\nsummary: "
count "one final line" "$out" '^ok: ' 1
expect "check --json: forged name" 0 "$cpex" check "$tmp/forge.yaml" --json
clean "check --json: nothing raw" "$tmp/out" 1
py "check --json keeps the name" 'assert doc["plugins"][0]["name"] == "evil\nsummary: forged by the name\x1b[2J\u009b", doc'

# A kind path and a plugin name that forge lines in a load error (all or nothing).
cat >"$tmp/badkind.yaml" <<YAML
plugins:
  - name: good
    kind: "lib:$lib/libcounter.so"
    hooks: [cmf.tool_pre_invoke]
  - name: "bad\n  - forged problem\e[2J"
    kind: "lib:$tmp/no\e[2Jsuch\nFAILED: 0 plugins\n.so"
    hooks: [cmf.tool_pre_invoke]
YAML
expect "check: forged kind" 1 "$cpex" check "$tmp/badkind.yaml"
clean "check: a forged kind adds no line" "$tmp/out" 10
has "the problem keeps its dlopen detail line" "$out" '^      dlopen: .*no\\x1b\[2Jsuch\\nFAILED: 0 plugins\\n\.so: cannot open'
has "the name is escaped in the problem" "$out" "^  - .*plugin 'bad\\\\n  - forged problem\\\\x1b\[2J': cannot load library '.*no\\\\x1b\[2Jsuch\\\\nFAILED: 0 plugins\\\\n\.so'"
count "one FAILED summary line" "$out" '^FAILED: ' 1
expect "run: forged kind" 1 "$cpex" run "$tmp/badkind.yaml" --input /dev/null
clean "run: a forged kind adds no line" "$tmp/err" 4
hasnt "no raw forged line" "$err" '^FAILED: 0 plugins'

# inspect: a manifest whose description forges lines and sets the window title;
# a path that forges a line.
expect "inspect: forged manifest text" 0 "$cpex" inspect "$lib/liblog_forge.so"
clean "inspect stdout: nothing raw" "$tmp/out" 15
has "description escaped" "$out" '^    description  manifest text\\nusable: yes\\x1b\]0;title\\x07$'
count "one usable line" "$out" '^usable: ' 1
expect "inspect: a path that forges lines" 1 "$cpex" inspect "$tmp/$(printf 'no\nusable: yes\n  forged detail\033[2J')"
clean "inspect stdout: the path adds no line" "$tmp/out" 6
clean "inspect stderr: the path adds no line" "$tmp/err" 1
count "inspect: no forged usable line" "$out" '^usable: yes' 0

# Usage errors quote the command line: escaped too.
expect "usage error: forged option" 2 "$cpex" run x.yaml "$(printf -- '--x\nsummary: forged\033[2J')"
clean "usage error: nothing raw" "$tmp/err" 2
expect "unknown command: forged" 2 "$cpex" "$(printf 'x\nsummary: forged\033[2J')"
clean "unknown command: nothing raw" "$tmp/err" 2

finish
