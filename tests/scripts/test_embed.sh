#!/usr/bin/env bash
# The README's embedding example builds (by the normal build) and behaves.
set -euo pipefail
build="$1"
out="$("$build/embed_example")"
expected=$'allow\ndeny: [dangerous_tool] rm_rf is never allowed (plugin tool-guard)'
if [ "$out" != "$expected" ]; then
  echo "unexpected output:"; echo "$out"; exit 1
fi
echo "1 passed, 0 failed"
