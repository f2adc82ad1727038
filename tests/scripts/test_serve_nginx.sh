#!/usr/bin/env bash
# `cpex serve` behind a real nginx (Debian's nginx-core, auth_request),
# with examples/nginx/nginx.conf and examples/serve.yaml as they ship (only
# the ports changed, to free loopback ones): an allowed request reaches the
# upstream with the header the plugins injected; a denied one gets 403 with
# the violation and never reaches it (the upstream's access log says so),
# whatever forwarding headers the client sends; the rate limit denies
# through nginx too. Both servers are stopped at the end.
#   bash test_serve_nginx.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$nginx_bin" ]; then
  echo "FAIL no nginx: scripts/deps.sh test installs nginx-core"; fail=$((fail + 1)); finish; exit 1
fi

# Three free loopback ports (asked of the kernel, then released).
read -r front up authz < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

serve_yaml
serve_start cpex "$tmp/serve.yaml" --listen "127.0.0.1:$authz" --deny-status 403 && serve_ready cpex

mkdir -p "$tmp/nginx"
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$front/" -e "s/127\.0\.0\.1:8081/127.0.0.1:$up/g" \
    -e "s/127\.0\.0\.1:8787/127.0.0.1:$authz/" "$src/examples/nginx/nginx.conf" >"$tmp/nginx/nginx.conf"
grep -q "127.0.0.1:$front" "$tmp/nginx/nginx.conf" && grep -q "127.0.0.1:$authz" "$tmp/nginx/nginx.conf" ||
  { echo "FAIL rewriting nginx.conf"; exit 1; }
expect "nginx -t accepts the example" 0 "$nginx_bin" -t -p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"
"$nginx_bin" -p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
bg_pids+=("$nginx_pid")
g="http://127.0.0.1:$front"
for i in $(seq 300); do
  curl -s -o /dev/null "$g/" && break
  kill -0 "$nginx_pid" 2>/dev/null || { echo "FAIL nginx did not start:"; cat "$tmp/nginx/error.log"; fail=$((fail + 1)); break; }
  sleep 0.1
done

ask() {  # ask NAME WANT_CODE CURL_ARGS...: body in $tmp/body, headers in $tmp/headers
  local name="$1" want="$2"; shift 2
  local got; got="$(curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$@")"
  if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL $name: HTTP $got, expected $want:"; cat "$tmp/headers" "$tmp/body"; fail=$((fail + 1)); fi
}

# ---- allowed: reaches the upstream, with the injected header ------------------------
ask "an allowed request" 200 "$g/api/orders?id=7"
has "the upstream answered, and saw the header" "$(cat "$tmp/body")" \
  '^upstream: GET /api/orders\?id=7 x-cpex-gateway=example/1\.0$'
ask "an allowed POST" 200 -X POST --data 'x=1' "$g/public/form"
has "the upstream saw the POST" "$(cat "$tmp/body")" '^upstream: POST /public/form x-cpex-gateway=example/1\.0$'

# ---- denied: 403, and the upstream never sees it ------------------------------------
ask "a denied path" 403 "$g/admin/users"
has "the violation in the body" "$(cat "$tmp/body")" '"code":"path_not_allowed"'
has "and in a header" "$(cat "$tmp/headers")" '^X-Cpex-Violation: \{"code":"path_not_allowed"'
ask "a client's X-Original-URI is overwritten" 403 "$g/admin/a" -H 'X-Original-URI: /api/ok'
ask "a client's X-Forwarded-Uri is removed" 403 "$g/admin/b" -H 'X-Forwarded-Uri: /api/ok' \
  -H 'X-Forwarded-Method: GET'

# ---- the rate limit, through nginx --------------------------------------------------
python3 - "$g" >"$tmp/burst" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
codes = {}
denied_body = None
for i in range(80):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", "/api/burst")
    r = c.getresponse(); b = r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
    if r.status == 403: denied_body = b.decode()
    c.close()
print(json.dumps({"codes": codes, "denied": denied_body}))
PY
cp "$tmp/burst" "$tmp/out"
py "a burst: allowed up to the limit, then denied" '
c = doc["codes"]
assert c.get("200", 0) >= 40 and c.get("403", 0) >= 1 and set(c) <= {"200", "403"}, c
assert "\"code\":\"rate_limited\"" in doc["denied"], doc
'

# ---- what the upstream saw ------------------------------------------------------------
log="$(cat "$tmp/nginx/upstream.log")"
has "the upstream log holds the allowed request" "$log" '"GET /api/orders\?id=7 HTTP/1\.[01]" 200 x-cpex-gateway="example/1\.0"'
hasnt "no denied request reached the upstream" "$log" '/admin'
allowed="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["codes"].get("200", 0))' "$tmp/burst")"
count "every allowed request of the burst reached it, no denied one" "$log" '"GET /api/burst ' "$allowed"
hasnt "nginx saw no unexpected auth status" "$(cat "$tmp/nginx/error.log")" 'auth request unexpected status'

# ---- stop both ------------------------------------------------------------------------
kill -TERM "$nginx_pid"
for i in $(seq 300); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$nginx_pid" 2>/dev/null; then echo "FAIL nginx did not stop"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
wait "$nginx_pid" 2>/dev/null
forget_background "$nginx_pid"
serve_stop cpex

finish
