#!/usr/bin/env bash
# A plugin author copies examples/plugins/single out of the tree, builds it
# with one cc line against the installed SDK header, and loads it.
set -euo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Install headers, library and cpex.pc into a private prefix.
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pcdir="$(dirname "$(find "$tmp/prefix" -name cpex.pc | head -n1)")"
export PKG_CONFIG_PATH="$pcdir"

mkdir "$tmp/author"
cp "$src/examples/plugins/single/single.c" "$tmp/author/"
cd "$tmp/author"
# The one line of the README (the SDK needs only cpex/plugin.h and cpex/abi.h).
cc -std=c11 -O2 -Wall -Werror -shared -fPIC -fvisibility=hidden \
   $(pkg-config --cflags cpex) -o libsingle.so single.c

# Only the entry point and the manifest are exported.
exported="$(nm -D --defined-only libsingle.so | awk '{print $3}' | sort | tr '\n' ' ')"
if [ "$exported" != "cpex_plugin_create cpex_plugin_list " ]; then
  echo "unexpected exports: $exported"; exit 1
fi

cat > plugins.yaml <<'YAML'
plugins:
  - name: hello
    kind: "lib:./libsingle.so"
    hooks: [cmf.tool_pre_invoke]
    config: { greeting: "bonjour" }
YAML
echo '{"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[{"content_type":"text","text":"hi"}]}}' > req.jsonl
out="$("$build/cpex" run plugins.yaml --input req.jsonl --json 2>/dev/null)"
case "$out" in
  *'"greeting":"bonjour"'*'"decision":"allow"'* | *'"decision":"allow"'*'"greeting":"bonjour"'*) ;;
  *) echo "unexpected result: $out"; exit 1 ;;
esac
echo "1 passed, 0 failed"
