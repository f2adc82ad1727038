#!/usr/bin/env bash
# The robustness classes of issue 10 through the real `cpex` binary:
#   - files that are not files: a `kind:` path that is a FIFO once hung
#     `cpex check`, `cpex run` and `cpex inspect` forever (inside dlopen);
#     each command now ends at once, naming the plugin and what the path is;
#   - trust: a library others can write loads with a warning naming the
#     plugin, the path, the mode and the fix; strict_permissions refuses it;
#   - pinning: `cpex inspect` prints the hash to pin (readable and --json);
#     a right pin checks out, a wrong one names both hashes;
#   - numbers: a timeout of 1e12 or .inf fails `cpex check` with the key,
#     the place and the range, instead of passing and breaking every invoke.
# Every command runs under `timeout`, so a hang fails the test instead of
# stalling it.
#   bash test_cli_files.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

T="timeout 60"
good="$lib/libcounter.so"
# A directory that only root and we can write, under the build directory
# ($tmp may be under /tmp, which is writable by others and would warn).
safe="$(mktemp -d "$build/cli-files-XXXXXX")"
chmod 755 "$safe"
trap 'rm -rf "$tmp" "$safe"' EXIT

# one_plugin FILE KIND [EXTRA_LINE] [SETTINGS_LINE]: a configuration of one plugin "p".
one_plugin() {
  {
    [ -n "${4:-}" ] && printf 'plugin_settings:\n  %s\n' "$4"
    printf 'plugins:\n  - name: p\n    kind: "lib:%s"\n    hooks: [cmf.tool_pre_invoke]\n' "$2"
    [ -n "${3:-}" ] && printf '    %s\n' "$3"
  } >"$1"
}

# ---- files that are not files -------------------------------------------------------------
mkfifo "$tmp/fifo.so"
one_plugin "$tmp/fifo.yaml" "$tmp/fifo.so"
expect "check: a FIFO ends at once" 1 $T "$cpex" check "$tmp/fifo.yaml"
has "check: the FIFO named" "$out" "plugin 'p': cannot load library '$tmp/fifo.so': it is a named pipe \(FIFO\), not a library file"
echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[]}}' >"$tmp/one.jsonl"
expect "run: a FIFO ends at once" 1 $T "$cpex" run "$tmp/fifo.yaml" --input "$tmp/one.jsonl"
has "run: the FIFO named" "$err" "plugin 'p': cannot load library '$tmp/fifo.so': it is a named pipe \(FIFO\)"
expect "inspect: a FIFO ends at once" 1 $T "$cpex" inspect "$tmp/fifo.so"
has "inspect: the FIFO named" "$out" "it is a named pipe \(FIFO\), not a library file"
expect "inspect --json: a FIFO" 1 $T "$cpex" inspect "$tmp/fifo.so" --json
py "inspect --json: a FIFO" 'assert doc["usable"] is False and doc["sha256"] is None and "named pipe (FIFO)" in doc["problems"][0], doc'

mkdir "$tmp/dir.so"
ln -s "$tmp/loop-b.so" "$tmp/loop-a.so"; ln -s "$tmp/loop-a.so" "$tmp/loop-b.so"
ln -s "$tmp/gone.so" "$tmp/dangling.so"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$tmp/sock.so"
for c in "dir.so|it is a directory" "loop-a.so|loop of symbolic links|Too many levels of symbolic links" \
         "dangling.so|it is a symbolic link to '$tmp/gone.so', which does not exist" \
         "sock.so|it is a socket, not a library file"; do
  f="${c%%|*}" why="${c#*|}"
  one_plugin "$tmp/c.yaml" "$tmp/$f"
  expect "check: $f" 1 $T "$cpex" check "$tmp/c.yaml" && has "check: $f named" "$out" "$why"
  expect "inspect: $f" 1 $T "$cpex" inspect "$tmp/$f" && has "inspect: $f named" "$out" "$why"
done
one_plugin "$tmp/c.yaml" /dev/null
expect "check: a character device" 1 $T "$cpex" check "$tmp/c.yaml"
has "check: a character device named" "$out" "it is a character device, not a library file"

# ---- inspect prints the hash to pin ------------------------------------------------------
cp "$good" "$safe/lib.so"
chmod 755 "$safe/lib.so"
sum="$(sha256sum "$safe/lib.so" | cut -d' ' -f1)"
expect "inspect: the hash" 0 "$cpex" inspect "$safe/lib.so"
has "inspect: sha256 line" "$out" "^sha256 +$sum$"
has "inspect: the pin line under the kind" "$out" "^    sha256: +$sum$"
expect "inspect --json: the hash" 0 "$cpex" inspect "$safe/lib.so" --json
py "inspect --json: the hash" "assert doc['sha256'] == '$sum', doc"

# ---- pins ---------------------------------------------------------------------------------
one_plugin "$tmp/pin.yaml" "$safe/lib.so" "sha256: $sum"
expect "check: the right pin" 0 "$cpex" check "$tmp/pin.yaml"
upper="$(tr 'a-f' 'A-F' <<<"$sum")"
one_plugin "$tmp/pin.yaml" "$safe/lib.so" "sha256: $upper"
expect "check: the right pin in capitals" 0 "$cpex" check "$tmp/pin.yaml"
wrong="$(printf '%064d' 7)"
one_plugin "$tmp/pin.yaml" "$safe/lib.so" "sha256: $wrong"
expect "check: a wrong pin" 1 "$cpex" check "$tmp/pin.yaml"
has "wrong pin: what" "$out" "plugin 'p': library '$safe/lib.so' does not match its pinned sha256"
has "wrong pin: pinned" "$out" "pinned: $wrong"
has "wrong pin: file" "$out" "file: +$sum"
one_plugin "$tmp/pin.yaml" "$safe/lib.so" "sha256: not-hex"
expect "check: bad hex" 1 "$cpex" check "$tmp/pin.yaml"
has "bad hex: where and why" "$out" "pin.yaml:5:13: plugin 'p': 'sha256' must be 64 hexadecimal digits .*character 1 \('n'\) is not a hex digit"

# ---- trust --------------------------------------------------------------------------------
cp "$good" "$safe/open.so"
chmod 757 "$safe/open.so"
one_plugin "$tmp/open.yaml" "$safe/open.so"
expect "check: others can write: loads, warns" 0 "$cpex" check "$tmp/open.yaml"
has "the warning names plugin, path, mode and fix" "$out$err" "plugin 'p'.*library '$safe/open.so' could be replaced by users other than root and the host's own: file '$safe/open.so' is writable by others \(mode 0757\): run chmod go-w '$safe/open.so'"
one_plugin "$tmp/open.yaml" "$safe/open.so" "" "strict_permissions: true"
expect "check: strict refuses it" 1 "$cpex" check "$tmp/open.yaml"
has "strict: the refusal" "$out" "plugin 'p': refusing library '$safe/open.so': users other than root and the host's own could replace it"
expect "inspect: the trust note" 0 "$cpex" inspect "$safe/open.so"
has "inspect: the note" "$out" "could replace this library: file '$safe/open.so' is writable by others \(mode 0757\)"

# ---- numbers ------------------------------------------------------------------------------
for v in 1e12 .inf 1e-12 -5; do
  one_plugin "$tmp/t.yaml" "$safe/lib.so" "timeout: $v"
  expect "check: timeout $v" 1 "$cpex" check "$tmp/t.yaml"
  has "timeout $v: key, place, range" "$out" "t.yaml:5:14: plugin 'p': 'timeout' must be a number of seconds from 0.001 to 86400, got $v"
done
one_plugin "$tmp/t.yaml" "$safe/lib.so" "" "plugin_timeout: 9.3e9"
expect "check: plugin_timeout 9.3e9" 1 "$cpex" check "$tmp/t.yaml"
has "plugin_timeout: key, place, range" "$out" "t.yaml:2:19: 'plugin_settings.plugin_timeout' must be a number of seconds from 0.001 to 86400, got 9.3e9"

finish
