#!/usr/bin/env bash
# The C files the project formats with .clang-format (clang-format 14, the
# one Debian 12 ships), and the two ways to use them:
#   scripts/format.sh           reformat them in place (`make format`)
#   scripts/format.sh --check   list the files that do not follow the style
#                               and exit 1 (the `test_format` test)
# The frozen headers of older ABIs (tests/compat/v1_*/include) are never
# touched: they are what an old plugin was built with.
set -euo pipefail
cd "$(dirname "$0")/.."

fmt="$(command -v clang-format-14 || command -v clang-format || true)"
if [ -z "$fmt" ]; then
  echo "format: clang-format is not installed (make test installs it: scripts/deps.sh test)" >&2
  exit 2
fi

mapfile -t files < <(git ls-files 'src/*.c' 'src/*.h' 'include/cpex/*.h' 'tests/*.c' 'tests/*.h' \
  'examples/*.c' 'examples/*.h' 'bench/*.c' 'bench/*.h' 'fuzz/*.c' 'tools/*.c' |
  grep -v '^tests/compat/v1_[0-9]*/include/')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    "$fmt" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "format: ${#bad[@]} file(s) do not follow .clang-format (run make format):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files follow .clang-format"
  exit 0
fi
"$fmt" -i "${files[@]}"
