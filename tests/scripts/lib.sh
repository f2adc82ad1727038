# lib.sh — what the script tests of the cpex binary share (sourced, so not
# named test_*.sh: ctest runs only those). A script starts with
#   set -uo pipefail
#   source "$(dirname "$0")/lib.sh"
# which takes its arguments BUILD_DIR [SOURCE_DIR], sets $build, $src, $cpex,
# $lib (the plugins of the build) and $tmp (removed on exit), zeroes the
# pass/fail counters, checks that the binary is there; and ends with `finish`.

# Absolute: paths are written into YAML files that live elsewhere.
build="$(cd "$1" && pwd)"
src="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)"
cpex="$build/cpex"
lib="$build/plugins"
tmp="$(mktemp -d)"
# Processes a script started in the background (servers): stopped on exit,
# whatever happened, so that nothing is left running.
bg_pids=()
stop_background() {
  local p
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
  bg_pids=()
}
# forget_background PID: it has been waited for; never signal it again.
forget_background() {
  local p keep=()
  for p in "${bg_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  bg_pids=("${keep[@]}")
}
trap 'stop_background; rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect NAME WANT_RC COMMAND...: runs the command, keeps stdout/stderr in
# $out/$err (and $tmp/out, $tmp/err), checks the exit code.
expect() {
  local name="$1" want="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  out="$(cat "$tmp/out")"; err="$(cat "$tmp/err")"
  # Under a sanitizer build a report may come with an expected exit code.
  if grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then
    echo "FAIL $name: sanitizer report:"; cat "$tmp/err"; fail=$((fail + 1)); return 1
  fi
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit code $rc, expected $want"; echo "--- stdout"; echo "$out" | head -40; echo "--- stderr"; echo "$err" | head -40
    fail=$((fail + 1)); return 1
  fi
  pass=$((pass + 1))
}
# expect_full NAME WANT_RC COMMAND...: as expect, with standard output on
# /dev/full (every write fails with ENOSPC); stderr in $err.
expect_full() {
  local name="$1" want="$2"; shift 2
  "$@" >/dev/full 2>"$tmp/err"; local rc=$?
  out=""; err="$(cat "$tmp/err")"
  if grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then
    echo "FAIL $name: sanitizer report:"; cat "$tmp/err"; fail=$((fail + 1)); return 1
  fi
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit code $rc, expected $want"; echo "--- stderr"; echo "$err" | head -40
    fail=$((fail + 1)); return 1
  fi
  pass=$((pass + 1))
}
# has NAME TEXT PATTERN: grep -E for PATTERN in TEXT
has() {
  if grep -qE -- "$3" <<<"$2"; then pass=$((pass + 1)); else
    echo "FAIL $1: no match for /$3/ in:"; echo "$2" | head -40; fail=$((fail + 1)); fi
}
# hasnt NAME TEXT PATTERN: no line of TEXT matches PATTERN
hasnt() {
  if grep -qE -- "$3" <<<"$2"; then echo "FAIL $1: unexpected /$3/ in:"; echo "$2" | head -40; fail=$((fail + 1)); else
    pass=$((pass + 1)); fi
}
count() {  # count NAME TEXT PATTERN N
  local n; n="$(grep -cE -- "$3" <<<"$2")"
  if [ "$n" -eq "$4" ]; then pass=$((pass + 1)); else
    echo "FAIL $1: $n lines match /$3/, expected $4 in:"; echo "$2" | head -40; fail=$((fail + 1)); fi
}
py() {  # py NAME SCRIPT: python over the JSON document in $tmp/out (as `doc`)
  local res
  res="$(python3 -c "
import json, sys
doc = json.load(open('$tmp/out'))
$2
" 2>&1)"
  if [ $? -eq 0 ]; then pass=$((pass + 1)); else echo "FAIL $1:"; echo "$res"; cat "$tmp/out"; fail=$((fail + 1)); fi
}

# gateway_yaml: examples/gateway.yaml as $tmp/gateway.yaml, its libraries
# taken from the build under test and its audit log kept in $tmp.
gateway_yaml() {
  sed -e "s#\.\./build/plugins#$lib#g" -e "s#/tmp/cpex-gateway-audit.jsonl#$tmp/audit.jsonl#" \
    "$src/examples/gateway.yaml" >"$tmp/gateway.yaml"
}

# serve_yaml: examples/serve.yaml as $tmp/serve.yaml, its libraries taken
# from the build under test.
serve_yaml() {
  sed -e "s#\.\./build/plugins#$lib#g" "$src/examples/serve.yaml" >"$tmp/serve.yaml"
}

# serve_start NAME ARGS...: start `cpex serve ARGS` in the background on a
# free loopback port (unless ARGS choose --listen or --unix), its stderr in
# $tmp/NAME.err; wait (at most 60 s) for its "listening on" line. Sets
# $serve_pid and $serve_url (http://127.0.0.1:PORT, or unix:PATH); returns
# 1 (with a FAIL) when it did not come up.
serve_start() {
  local name="$1"; shift
  local listen=(--listen 127.0.0.1:0)
  case " $* " in *" --listen "*|*" --unix "*|*" --listen="*|*" --unix="*) listen=() ;; esac
  "$cpex" serve "$@" "${listen[@]}" 2>"$tmp/$name.err" &
  serve_pid=$!
  bg_pids+=("$serve_pid")
  serve_url=""
  local i
  for i in $(seq 600); do
    serve_url="$(grep -oE 'listening on (http://[^ ]+|unix:[^ ]+)' "$tmp/$name.err" | head -1 | sed 's/^listening on //')"
    [ -n "$serve_url" ] && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL $name: the server did not come up:"; cat "$tmp/$name.err"; fail=$((fail + 1)); return 1
}

# serve_ready NAME: wait (at most 60 s) until $serve_url/healthz answers 200.
serve_ready() {
  local i
  for i in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$serve_url/healthz")" = 200 ] && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL $1: /healthz never answered 200:"; cat "$tmp/$1.err"; fail=$((fail + 1)); return 1
}

# serve_stop NAME [SIGNAL [WANT_RC]]: send SIGNAL (TERM) and wait (at most
# 60 s) for the server to exit with WANT_RC (0); its stderr must hold no
# sanitizer report.
serve_stop() {
  local name="$1" sig="${2:-TERM}" want="${3:-0}" i rc
  kill -"$sig" "$serve_pid" 2>/dev/null
  for i in $(seq 600); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$serve_pid" 2>/dev/null; then
    echo "FAIL $name: still running 60 s after SIG$sig"; kill -KILL "$serve_pid"; fail=$((fail + 1))
  fi
  wait "$serve_pid"; rc=$?
  forget_background "$serve_pid"
  if grep -qE 'Sanitizer|runtime error:' "$tmp/$name.err"; then
    echo "FAIL $name: sanitizer report:"; cat "$tmp/$name.err"; fail=$((fail + 1)); return 1
  fi
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit code $rc after SIG$sig, expected $want:"; cat "$tmp/$name.err"; fail=$((fail + 1)); return 1
  fi
  pass=$((pass + 1))
}

# finish: the last line of a script; prints the counts, fails on a failure.
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

[ -x "$cpex" ] || { echo "no cpex binary in $build"; exit 1; }

# lib_trusted: 1 when only root and this user can write the plugins of the
# build and every directory above them. Otherwise (a checkout under /tmp, a
# group-writable home) every load of them adds a warning that they could be
# replaced (docs/configuration.md, "Plugin files"), and a test that counts
# output lines must not count on the exact number.
lib_trusted="$(python3 - "$lib" <<'PY'
import os, sys
p = os.path.realpath(sys.argv[1])
me = os.geteuid()
while True:
    st = os.stat(p)
    if (st.st_uid not in (0, me)) or (st.st_mode & 0o022):
        print(0); break
    if p == "/":
        print(1); break
    p = os.path.dirname(p)
PY
)"
