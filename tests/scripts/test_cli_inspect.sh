#!/usr/bin/env bash
# `cpex inspect` on the real binary: every example library (readable and
# --json), a library without a manifest, incompatible ABIs, files that are
# not libraries, and hostile manifests (absurd counts, NULL and wild
# pointers) compiled here, which must be reported, never crash the tool.
#   bash test_cli_inspect.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# ---- the example libraries -------------------------------------------------------------
declare -A display=([tool_allowlist]=tool-allowlist [pii_redact]=pii-redact [rate_limit]=rate-limit
                    [header_inject]=header-inject [audit_log]=audit-log [single]=single
                    [multi_handler]=multi-handler)
for name in "${!display[@]}"; do
  so="$lib/lib$name.so"
  expect "inspect $name" 0 "$cpex" inspect "$so" || continue
  has "$name path" "$out" "^library +$so$"
  has "$name abi" "$out" '^ABI +library 1\.[0-9]+, host 1\.[0-9]+: compatible$'
  has "$name manifest" "$out" '^manifest +yes$'
  has "$name entry" "$out" "^  entry \(default\): ${display[$name]} [0-9]+\.[0-9]+\.[0-9]+$"
  has "$name hooks" "$out" '^    hooks +cmf\.'
  has "$name symbol" "$out" '^    symbol +cpex_plugin_create \(exported\)$'
  has "$name kind" "$out" "^    kind: +\"lib:$so\"$"
  has "$name usable" "$out" '^usable: yes$'
  expect "inspect $name --json" 0 "$cpex" inspect "$so" --json || continue
  py "$name json" "
assert doc['usable'] is True and doc['loaded'] is True and doc['manifest'] is True, doc
assert doc['abi'].startswith('1.') and doc['compatible'] is True and doc['problems'] == [], doc  # rate_limit targets 1.0 on purpose
assert doc['path'] == '$so' and doc['symbols'] == ['cpex_plugin_create'], doc
e = doc['entries']
assert len(e) == 1 and e[0]['entry'] == '' and e[0]['display_name'] == '${display[$name]}', e
assert e[0]['kind'] == 'lib:$so' and e[0]['exported'] is True and len(e[0]['hooks']) >= 1, e
"
done
expect "gateway hooks listed" 0 "$cpex" inspect "$lib/libtool_allowlist.so"
has "all hooks" "$out" '^    hooks +cmf\.tool_pre_invoke, cmf\.tool_post_invoke, cmf\.http_request$'
has "fragment hint" "$out" "one handler only: \"lib:$lib/libtool_allowlist.so#cmf.tool_pre_invoke\""

# A library of several plugins: one kind per entry.
expect "multi_plugin" 0 "$cpex" inspect "$lib/libmulti_plugin.so" --json
py "multi_plugin entries" "
e = {x['entry']: x for x in doc['entries']}
assert set(e) == {'allow', 'deny'}, e
assert e['allow']['kind'] == 'lib:$lib/libmulti_plugin.so?entry=allow', e
assert e['deny']['symbol'] == 'cpex_plugin_create_deny' and e['deny']['version'] == '0.5.0', e
assert doc['symbols'] == ['cpex_plugin_create_allow', 'cpex_plugin_create_deny'], doc
"
# What inspect prints in kind: is what a configuration loads.
kind="$(python3 -c "import json; print(json.load(open('$tmp/out'))['entries'][1]['kind'])")"
printf 'plugins:\n  - name: from-inspect\n    kind: "%s"\n    hooks: [cmf.tool_pre_invoke]\n' "$kind" >"$tmp/k.yaml"
expect "kind from inspect loads" 0 "$cpex" check "$tmp/k.yaml"

# A bare name is found through CPEX_PLUGIN_PATH (lib<name>.so, then <name>),
# in order; the binary itself carries no plugin directory.
expect "bare name unset path" 1 env -u CPEX_PLUGIN_PATH "$cpex" inspect rate_limit && has "bare name hint" "$out$err" 'CPEX_PLUGIN_PATH'
expect "bare name" 0 env CPEX_PLUGIN_PATH="$tmp/none:$lib" "$cpex" inspect rate_limit && has "bare name resolved" "$out" "^library +$lib/librate_limit.so$"
expect "bare file name" 0 env CPEX_PLUGIN_PATH="$lib" "$cpex" inspect librate_limit.so && has "bare file name resolved" "$out" "^library +$lib/librate_limit.so$"
hasnt "no build path in cpex" "$(strings "$cpex")" "$build/plugins"

# ---- the library's code never runs in cpex ------------------------------------------------------
# A constructor runs in the sandboxed worker that reads the library: one that
# writes a file cannot (the worker may write nothing), one that aborts ends
# only the worker, and inspect says so.
marker="/tmp/cpex-test-ctor-wrote-$(id -u)"
rm -f "$marker"
expect "ctor that writes" 0 "$cpex" inspect "$lib/libctor_write.so"
has "read in the sandbox" "$out" '^read in a sandboxed worker: no_new_privs; .*seccomp allow-list'
has "still described" "$out" '^  entry \(default\): ctor-write 1\.0\.0$'
if [ -e "$marker" ]; then echo "FAIL the constructor wrote $marker"; fail=$((fail + 1)); rm -f "$marker"; else pass=$((pass + 1)); fi
expect "ctor that aborts" 1 "$cpex" inspect "$lib/libctor_crash.so"
has "the crash is reported" "$out" "the worker reading '.*libctor_crash\.so' was killed by signal 6 \(SIGABRT\)"
has "not in this process" "$out" 'nothing of it ran in this process'
has "unusable" "$out" '^usable: NO'
expect "ctor that aborts --json" 1 "$cpex" inspect "$lib/libctor_crash.so" --json
py "crash json" "
assert doc['usable'] is False and doc['loaded'] is False and len(doc['problems']) == 1, doc
"
expect "sandbox in json" 0 "$cpex" inspect "$lib/librate_limit.so" --json
py "sandbox json" "
assert doc['sandbox'].startswith('no_new_privs'), doc
"

# ---- a library without a manifest -----------------------------------------------------------
if [ -f "$lib/libno_manifest.so" ]; then
  expect "no manifest" 0 "$cpex" inspect "$lib/libno_manifest.so"
  has "says so" "$out" '^manifest +no$'
  has "note" "$out" 'no manifest: the library does not export cpex_plugin_list'
  has "default symbol" "$out" '^    symbol +cpex_plugin_create \(exported\)$'
  has "kind" "$out" "^    kind: +\"lib:$lib/libno_manifest.so\"$"
  expect "no manifest --json" 0 "$cpex" inspect "$lib/libno_manifest.so" --json
  py "no manifest json" "
assert doc['manifest'] is False and doc['abi'] is None and doc['compatible'] is None and doc['usable'] is True, doc
assert [x['entry'] for x in doc['entries']] == [''] and doc['entries'][0]['hooks'] is None, doc
"
fi

# ---- incompatible ABIs (test plugins) ----------------------------------------------------------
if [ -f "$lib/libabi_major2.so" ]; then
  expect "major 2" 1 "$cpex" inspect "$lib/libabi_major2.so"
  has "major 2 abi line" "$out" '^ABI +library 2\.0, host 1\.[0-9]+: NOT compatible$'
  has "major 2 says why and what to do" "$out" 'host has ABI 1\.[0-9]+, library has ABI 2\.0; the major versions differ\. Rebuild'
  has "problem on stderr too" "$err" 'incompatible ABI'
fi
if [ -f "$lib/libabi_newer_minor.so" ]; then
  expect "newer minor" 1 "$cpex" inspect "$lib/libabi_newer_minor.so" --json
  py "newer minor json" "assert doc['compatible'] is False and doc['usable'] is False and 'minor is newer' in doc['problems'][0], doc"
fi

# ---- not libraries ---------------------------------------------------------------------
expect "text file" 1 "$cpex" inspect "$src/README.md"
has "text file cause" "$out" 'invalid ELF header; the file is not a shared library'
has "usable no" "$out" '^usable: NO'
expect "missing file" 1 "$cpex" inspect "$tmp/libnope.so"
has "missing named" "$out" "cannot find '$tmp/libnope.so'"
expect "missing --json" 1 "$cpex" inspect "$tmp/libnope.so" --json
py "missing json" "assert doc['loaded'] is False and doc['usable'] is False and doc['problems'], doc"
expect "directory" 1 "$cpex" inspect "$tmp"
head -c 64 /dev/urandom >"$tmp/junk.so"
expect "random bytes" 1 "$cpex" inspect "$tmp/junk.so"
printf '\177ELF' >"$tmp/short.so"
expect "truncated ELF" 1 "$cpex" inspect "$tmp/short.so"
if [ -e "$build/cpex" ]; then
  expect "a program" 1 "$cpex" inspect "$build/cpex"
fi
libc="$(python3 -c 'import ctypes.util; print(ctypes.util.find_library("c") or "")' 2>/dev/null)"
for d in /lib/x86_64-linux-gnu /lib/aarch64-linux-gnu /usr/lib64 /lib64 /lib; do
  [ -f "$d/libc.so.6" ] && { expect "libc has no entry point" 1 "$cpex" inspect "$d/libc.so.6"; has "no entry point" "$out" 'no entry point'; break; }
done

# ---- hostile manifests, compiled here ------------------------------------------------------
cc="${CC:-cc}"
if command -v "$cc" >/dev/null 2>&1; then
  cat >"$tmp/hostile.c" <<'C'
#include <stdint.h>
#include <cpex/abi.h>
#define EXPORT __attribute__((visibility("default")))
static const char *const hooks[] = {"cmf.tool_pre_invoke"};
#if CASE == 1 /* an absurd entry count */
static const cpex_manifest_entry e0 = {sizeof(cpex_manifest_entry), 0, "", "x", "1", "d", 1, hooks};
static const cpex_manifest_entry *const entries[] = {&e0};
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, (size_t)1 << 40, entries, 0};
#elif CASE == 2 /* a wild entry list */
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 2, (const cpex_manifest_entry *const *)(uintptr_t)0x10, 0};
#elif CASE == 3 /* NULL names */
static const cpex_manifest_entry e0 = {sizeof(cpex_manifest_entry), 0, 0, 0, 0, 0, 1, hooks};
static const cpex_manifest_entry *const entries[] = {&e0};
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries, 0};
#elif CASE == 4 /* wild strings and hook list */
static const cpex_manifest_entry e0 = {sizeof(cpex_manifest_entry), 0, "", (const char *)(uintptr_t)0x1000, "1", "d", 3, (const char *const *)(uintptr_t)0xdead0000};
static const cpex_manifest_entry *const entries[] = {&e0};
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries, 0};
#elif CASE == 5 /* a garbage struct_size */
EXPORT const cpex_manifest cpex_plugin_list = {0xffffffffu, CPEX_ABI_VERSION, 1, 0, 0};
#elif CASE == 6 /* an entry listed without its symbol */
static const cpex_manifest_entry e0 = {sizeof(cpex_manifest_entry), 0, "ghost", "ghost", "1", "d", 1, hooks};
static const cpex_manifest_entry *const entries[] = {&e0};
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries, 0};
#elif CASE == 7 /* the manifest symbol is a function */
EXPORT int cpex_plugin_list(void) { return 0; }
#elif CASE == 8 /* an entry name that is not a C identifier, listed twice */
static const cpex_manifest_entry e0 = {sizeof(cpex_manifest_entry), 0, "a-b", "x", "1", "d", 1, hooks};
static const cpex_manifest_entry *const entries[] = {&e0, &e0};
EXPORT const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 2, entries, 0};
#elif CASE == 9 /* named entry points, no manifest */
EXPORT int cpex_plugin_create_alpha(void) { return 0; }
EXPORT int cpex_plugin_create_beta(void) { return 0; }
#endif
C
  want=("" "claims 1099511627776 entries" "entry list points outside the library" "the name of entry 0 is NULL"
        "display name of entry '\(default\)' points outside the library" "struct_size is 4294967295"
        "does not export cpex_plugin_create_ghost" "is not a data object" "'a-b' is not a C identifier")
  for c in 1 2 3 4 5 6 7 8 9; do
    if ! "$cc" -std=c11 -shared -fPIC -fvisibility=hidden -I"$src/include" -DCASE=$c -o "$tmp/libhostile$c.so" "$tmp/hostile.c"; then
      echo "FAIL compiling hostile case $c"; fail=$((fail + 1)); continue
    fi
    if [ $c -eq 9 ]; then
      expect "named entries without manifest" 0 "$cpex" inspect "$tmp/libhostile9.so" --json
      py "named entries json" "
assert [x['kind'] for x in doc['entries']] == ['lib:$tmp/libhostile9.so?entry=alpha', 'lib:$tmp/libhostile9.so?entry=beta'], doc
"
      continue
    fi
    expect "hostile $c is refused, not a crash" 1 "$cpex" inspect "$tmp/libhostile$c.so" && has "hostile $c reason" "$out" "${want[$c]}"
    expect "hostile $c --json" 1 "$cpex" inspect "$tmp/libhostile$c.so" --json && py "hostile $c json" "assert doc['usable'] is False and doc['problems'], doc"
  done
else
  echo "note: no C compiler ($cc); hostile manifest cases skipped"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
