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
has "run stops" "$err" '^cpex run: stopped at line 1: its result was lost'
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
  res="$(python3 - "$2" "$3" "$lib_trusted" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
want = int(sys.argv[2])
problems = []
n = raw.count(b"\n")
# Where others can write the build's plugins, each load adds a warning
# that says so: the count is not this test's to check there.
if n != want and sys.argv[3] == "1":
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
has "the problem keeps its detail line (the system's words)" "$out" '^      stat: .*no\\x1b\[2Jsuch\\nFAILED: 0 plugins\\n\.so: No such file or directory'
has "the name is escaped in the problem" "$out" "^  - .*plugin 'bad\\\\n  - forged problem\\\\x1b\[2J': cannot load library '.*no\\\\x1b\[2Jsuch\\\\nFAILED: 0 plugins\\\\n\.so'"
count "one FAILED summary line" "$out" '^FAILED: ' 1
expect "run: forged kind" 1 "$cpex" run "$tmp/badkind.yaml" --input /dev/null
clean "run: a forged kind adds no line" "$tmp/err" 4
hasnt "no raw forged line" "$err" '^FAILED: 0 plugins'

# inspect: a manifest whose description forges lines and sets the window title;
# a path that forges a line.
expect "inspect: forged manifest text" 0 "$cpex" inspect "$lib/liblog_forge.so"
clean "inspect stdout: nothing raw" "$tmp/out" 19 # 15 + the sha256 line and its pin + the sandbox the library was read in (2)
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

# ---- a bounded context table ------------------------------------------------------
# The example gateway's tool-allowlist with verify_results: a post hook passes
# only if the pre hook of the same context approved its call.
cat >"$tmp/allow.yaml" <<YAML
plugins:
  - name: tool-allowlist
    kind: "lib:$lib/libtool_allowlist.so"
    hooks: [cmf.tool_pre_invoke, cmf.tool_post_invoke]
    config: {allow: ["search_*"], verify_results: true}
YAML
call() { echo "{\"hook\":\"cmf.tool_pre_invoke\",\"context\":\"$1\",\"payload\":{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"call-$1\",\"name\":\"search_docs\",\"arguments\":{}}}]}}"; }
result() { echo "{\"hook\":\"cmf.tool_post_invoke\",\"context\":\"$1\",\"payload\":{\"role\":\"tool\",\"content\":[{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"call-$1\",\"tool_name\":\"search_docs\",\"content\":\"ok\"}}]}}"; }
# The least recently USED id goes, not the oldest inserted: with room for two,
# a is used again (line 3) after b was stored, so c's arrival drops b (line 5
# still finds a's approval; line 6 finds none for b). A denied line hands back
# no context, so b is not stored again and c stays.
{ call a; call b; result a; call c; result a; result b; result c; } >"$tmp/lru.jsonl"
expect "LRU order" 0 "$cpex" run "$tmp/allow.yaml" --input "$tmp/lru.jsonl" --json --max-contexts 2
pycheck() { python3 -c "
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
$2
" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL $1"; cat "$tmp/out"; fail=$((fail + 1)); }; }
pycheck "a kept, b dropped" '
d = [(l["line"], l["decision"], l.get("violation", {}).get("code")) for l in lines]
assert d == [(1, "allow", None), (2, "allow", None), (3, "allow", None), (4, "allow", None),
             (5, "allow", None), (6, "deny", "tool_result_unapproved"), (7, "allow", None)], d'
has "evictions in the summary" "$err" '^summary: 7 requests, 6 allowed, 1 denied, 0 errors, 0 soft errors, 1 context evicted \(--max-contexts 2\), [0-9.]+ ms$'
count "one note at the first eviction" "$err" '^cpex run: line 4: more than 2 context ids at once; from here on the least recently used id is dropped' 1
expect "no eviction below the limit" 0 "$cpex" run "$tmp/allow.yaml" --input "$tmp/lru.jsonl" --json --max-contexts 3
has "no eviction count when none" "$err" '^summary: 7 requests, 7 allowed, 0 denied, 0 errors, 0 soft errors, [0-9.]+ ms$'
hasnt "no note when none" "$err" 'least recently used'
expect "default limit" 0 "$cpex" run "$tmp/allow.yaml" --input "$tmp/lru.jsonl" --json
has "default holds them all" "$err" '^summary: 7 requests, 7 allowed'
for bad in 0 -1 x 1e3 ''; do
  expect "--max-contexts '$bad'" 2 "$cpex" run "$tmp/allow.yaml" --max-contexts "$bad"
done
has "says what it needs" "$err" '--max-contexts needs a number of context ids of at least 1'

# Many distinct ids, room for 100: every id beyond the window was evicted, a
# pre/post pair inside the window still threads its state, an evicted id
# comes back with an empty context, and memory does not grow with the ids.
many() {  # many N: N calls with distinct ids, a result for the last (kept) and the first (evicted)
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
call = '{"hook":"cmf.tool_pre_invoke","context":"id-%d","payload":{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"call-id-%d","name":"search_docs","arguments":{}}}]}}'
res = '{"hook":"cmf.tool_post_invoke","context":"id-%d","payload":{"role":"tool","content":[{"content_type":"tool_result","content":{"tool_call_id":"call-id-%d","tool_name":"search_docs","content":"ok"}}]}}'
for i in range(n):
    print(call % (i, i))
print(res % (n - 1, n - 1))
print(res % (0, 0))
PY
}
many 50000 >"$tmp/many.jsonl"
many 2000 >"$tmp/few.jsonl"
# maxrss NAME FILE: run with --max-contexts 100, keep the peak RSS (KiB) in $rss
maxrss() {
  rss="$(python3 - "$cpex" "$tmp/allow.yaml" "$2" "$tmp" <<'PY'
import resource, subprocess, sys
cpex, yaml, inp, tmp = sys.argv[1:]
with open(tmp + "/out", "wb") as o, open(tmp + "/err", "wb") as e:
    rc = subprocess.run([cpex, "run", yaml, "--input", inp, "--json", "--max-contexts", "100"], stdout=o, stderr=e).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -rc - 1)
PY
)"
  out="$(cat "$tmp/out")"; err="$(cat "$tmp/err")"
  [ "$rss" -ge 0 ] && pass=$((pass + 1)) || { echo "FAIL $1: exit code $((-rss - 1))"; echo "$err" | tail -5; fail=$((fail + 1)); }
}
maxrss "2000 ids" "$tmp/few.jsonl"; rss_few=$rss
maxrss "50000 ids" "$tmp/many.jsonl"; rss_many=$rss
has "exact eviction count" "$err" '^summary: 50002 requests, 50001 allowed, 1 denied, 0 errors, 0 soft errors, 49900 contexts evicted \(--max-contexts 100\), '
pycheck "the pair in the window threads, the evicted id starts over" '
assert len(lines) == 50002
last, first = lines[-2], lines[-1]
assert last["context"] == "id-49999" and last["decision"] == "allow", last
assert first["context"] == "id-0" and first["decision"] == "deny" and first["violation"]["code"] == "tool_result_unapproved", first'
# Sanitizer builds keep freed memory in quarantine: the peak says nothing there.
# A sanitizer build, from its cache (ldd alone once failed on a loaded
# machine, and the check then ran under ASan's own memory use).
if grep -qE '^CPEX_SANITIZE:[A-Z]*=.+' "$build/CMakeCache.txt" 2>/dev/null ||
   ldd "$cpex" 2>/dev/null | grep -qE 'lib(asan|tsan)'; then
  echo "(memory check skipped under a sanitizer: ${rss_few} KiB / ${rss_many} KiB)"
elif [ $((rss_many - rss_few)) -lt 8192 ]; then
  pass=$((pass + 1))
else
  echo "FAIL memory grows with the ids: ${rss_few} KiB for 2000 ids, ${rss_many} KiB for 50000"; fail=$((fail + 1))
fi

finish
