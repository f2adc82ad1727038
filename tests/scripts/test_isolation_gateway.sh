#!/usr/bin/env bash
# The example gateway with every plugin isolated (isolation: process) gives
# the same results as in process: `cpex run --json` over
# examples/requests.jsonl compared line by line (only the rate limiter's
# "retry in N ms" and the execution records' times, which depend on how much
# time passed, are masked), the same exit code and summary, the same audit
# log lines (audit-log is an audit sink: its verdicts cross to its worker);
# `cpex check` shows the protections of each isolated plugin; and no worker
# is left running.
#   bash test_isolation_gateway.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

gateway_yaml
# Every plugin isolated; the audit log may write into $tmp only.
python3 - "$tmp/gateway.yaml" "$tmp/isolated.yaml" "$tmp" <<'PY'
import re, sys
src, dst, tmp = sys.argv[1:]
y = open(src).read()
y = re.sub(r'(\n    kind: "[^"]*"\n)', r'\1    isolation: process\n', y)
y = y.replace('    capabilities: [read_subject, read_request]\n',
              '    capabilities: [read_subject, read_request]\n'
              '    sandbox: {write_paths: ["%s"]}\n' % tmp)
open(dst, 'w').write(y)
PY
count "six isolated plugins" "$(cat "$tmp/isolated.yaml")" '^    isolation: process$' 6

expect "check isolated" 0 "$cpex" check "$tmp/isolated.yaml"
count "protections per plugin" "$out" '^         isolation: process \(2 worker threads\): no_new_privs; .*seccomp allow-list' 6
has "audit-log may write its directory" "$out" 'writes: 1 write_paths'
expect "check isolated --json" 0 "$cpex" check "$tmp/isolated.yaml" --json
py "isolation in json" "
iso = [p['isolation'] for p in doc['plugins']]
assert len(iso) == 6 and all(i.startswith('process (2 worker threads)') for i in iso), iso
"

# The same requests, in process and isolated.
# (and the execution records' times: when each plugin ran, and for how long)
mask() { sed -E -e 's/retry in [0-9]+ ms/retry in N ms/g' -e 's/"retry_after_ms":[0-9]+/"retry_after_ms":N/g' \
           -e 's/"(start_unix_ns|duration_ns)":[0-9]+/"\1":N/g' "$1"; }
"$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl" --json >"$tmp/in.jsonl" 2>"$tmp/in.err"
rc_in=$?
mv "$tmp/audit.jsonl" "$tmp/audit-in.jsonl"
"$cpex" run "$tmp/isolated.yaml" --input "$src/examples/requests.jsonl" --json >"$tmp/iso.jsonl" 2>"$tmp/iso.err" &
host=$!
wait "$host"
rc_iso=$?
if [ "$rc_in" -eq "$rc_iso" ]; then pass=$((pass + 1)); else
  echo "FAIL exit codes differ: in process $rc_in, isolated $rc_iso"; cat "$tmp/iso.err"; fail=$((fail + 1)); fi
n_in=$(wc -l <"$tmp/in.jsonl")
if [ "$n_in" -ge 30 ] && diff <(mask "$tmp/in.jsonl") <(mask "$tmp/iso.jsonl") >"$tmp/diff"; then
  pass=$((pass + 1))
else
  echo "FAIL the isolated gateway's results differ ($n_in lines in process):"; head -40 "$tmp/diff"; fail=$((fail + 1))
fi
# (a sanitizer build adds a warning per plugin: its workers run without a memory limit)
summary() { grep '^summary:' "$1" | sed -E 's/, [0-9.]+ ms$//'; }
if [ "$(summary "$tmp/in.err")" = "$(summary "$tmp/iso.err")" ]; then pass=$((pass + 1)); else
  echo "FAIL stderr differs:"; diff "$tmp/in.err" "$tmp/iso.err" | head; fail=$((fail + 1)); fi
# The audit log, written by the sandboxed worker: the same events (but for
# the times, and the rate limiter's retry delay in a deny's reason).
strip() { python3 -c "
import json, re, sys
for l in open(sys.argv[1]):
    d = json.loads(l); d.pop('time', None)
    for e in d.get('executions', []): e.pop('duration_ns', None)
    print(re.sub(r'retry in [0-9]+ ms', 'retry in N ms', json.dumps(d, sort_keys=True)))
" "$1" | sort; }
if [ -s "$tmp/audit.jsonl" ] && diff <(strip "$tmp/audit-in.jsonl") <(strip "$tmp/audit.jsonl") >/dev/null; then
  pass=$((pass + 1))
else
  echo "FAIL the isolated audit log differs:"; diff <(strip "$tmp/audit-in.jsonl") <(strip "$tmp/audit.jsonl") | head -20
  fail=$((fail + 1))
fi
# Workers end with the command (their command line names the host's pid).
if pgrep -f "cpex-worker --serve [0-9]+ $host " >/dev/null; then
  echo "FAIL workers of $host left running:"; pgrep -af "cpex-worker --serve [0-9]+ $host "; fail=$((fail + 1))
else
  pass=$((pass + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
