#!/usr/bin/env bash
# Every C file of the project follows .clang-format (scripts/format.sh; the
# frozen headers of older ABIs excepted). `make format` fixes a failure.
#   bash test_format.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
src="${2:?usage: test_format.sh BUILD_DIR SOURCE_DIR}"
if ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: the file list comes from git ls-files"; exit 0
fi
"$src/scripts/format.sh" --check
