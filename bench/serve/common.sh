# bench/serve/common.sh — what bench_serve.sh and instructions.sh share
# (sourced).

# bench_yaml BUILD_DIR SOURCE_DIR OUT DIR: examples/gateway.yaml with the
# plugins of examples/serve.yaml appended to its list, the libraries from
# BUILD_DIR, the audit log in DIR.
bench_yaml() {
  local lib="$1/plugins"
  sed -e "s#\.\./build/plugins#$lib#g" -e "s#/tmp/cpex-gateway-audit.jsonl#$4/audit.jsonl#" \
    "$2/examples/gateway.yaml" >"$3"
  sed -n '/^plugins:/,$p' "$2/examples/serve.yaml" | tail -n +2 |
    sed -e "s#\.\./build/plugins#$lib#g" >>"$3"
}

# wait_up ERR_FILE PID: wait (at most 120 s) until the server writing
# ERR_FILE listens and /healthz answers 200; sets $url. Returns 1 if not.
wait_up() {
  local i
  url=""
  for i in $(seq 600); do
    url="$(grep -oE 'listening on http://[^ ]+' "$1" | head -1 | sed 's/^listening on //')" || true
    [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.2
  done
  echo "the server did not come up:" >&2
  cat "$1" >&2
  return 1
}
