#!/usr/bin/env bash
# The cpex command's help, version and usage errors (exit code 2), run on
# the real binary of the build under test.
#   bash test_cli_basics.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

expect "--help" 0 "$cpex" --help && { has "--help lists run" "$out" '^  run CONFIG'; has "--help lists check" "$out" '^  check CONFIG'; has "--help lists inspect" "$out" '^  inspect LIBRARY'; has "--help exit codes" "$out" '0 success, 1 the work failed'; }
expect "-h" 0 "$cpex" -h
expect "help run" 0 "$cpex" help run && has "help run" "$out" '^usage: cpex run'
expect "run --help" 0 "$cpex" run --help && { has "run --help" "$out" '^usage: cpex run CONFIG'; has "run --help request" "$out" '"context"'; }
expect "check --help" 0 "$cpex" check --help && has "check --help" "$out" '^usage: cpex check CONFIG'
expect "inspect --help" 0 "$cpex" inspect --help && has "inspect --help" "$out" '^usage: cpex inspect LIBRARY'
expect "--version" 0 "$cpex" --version && has "--version" "$out" '^cpex [0-9]+\.[0-9]+\.[0-9]+ \(libcpex [0-9]+\.[0-9]+\.[0-9]+, plugin ABI [0-9]+\.[0-9]+\)$'
expect "-V" 0 "$cpex" -V

# Usage errors: exit 2, a message on stderr, nothing on stdout.
expect "no command" 2 "$cpex" && has "no command prints usage" "$err" 'usage: cpex COMMAND'
expect "unknown command" 2 "$cpex" frobnicate && has "unknown command" "$err" "unknown command 'frobnicate'"
expect "unknown option" 2 "$cpex" --frob && has "unknown option" "$err" "unknown option '--frob'"
expect "help unknown" 2 "$cpex" help frob
expect "run without config" 2 "$cpex" run && has "run without config" "$err" 'missing CONFIG'
expect "run unknown option" 2 "$cpex" run x.yaml --jsn && { has "run unknown option" "$err" "unknown option '--jsn'"; has "points to help" "$err" "cpex run --help"; }
expect "run --hook without value" 2 "$cpex" run x.yaml --hook
expect "run --input without value" 2 "$cpex" run x.yaml --input
expect "run two configs" 2 "$cpex" run a.yaml b.yaml && has "run two configs" "$err" "unexpected argument 'b.yaml'"
expect "check without config" 2 "$cpex" check && has "check without config" "$err" 'missing CONFIG'
expect "check unknown option" 2 "$cpex" check x.yaml --verbose
expect "inspect without library" 2 "$cpex" inspect && has "inspect without library" "$err" 'missing LIBRARY'
expect "inspect two libraries" 2 "$cpex" inspect a.so b.so
[ -z "$(cat "$tmp/out")" ] && pass=$((pass + 1)) || { echo "FAIL usage errors write nothing to stdout"; fail=$((fail + 1)); }

finish
