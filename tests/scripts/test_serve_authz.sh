#!/usr/bin/env bash
# `cpex serve` /v1/authz, the forward-auth endpoint, without a gateway in
# front (test_serve_nginx.sh has one): what the plugins see for each
# gateway's form of the question (nginx X-Original-*, Traefik
# X-Forwarded-*, Envoy's path prefix), the refusals of ambiguous or missing
# originals, the status and headers of a denial (details.http_status and
# http_headers, --deny-status, x-cpex-violation kept short), the headers of
# an allow, a configuration without cmf.http_request (503, fail closed), and
# examples/serve.yaml end to end.
#   bash test_serve_authz.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# json NAME PYTHON: assertions over the JSON body in $tmp/body (as `doc`)
# and the response headers in $tmp/headers (as `hdr`, a lower-case dict).
json() {
  local res
  res="$(python3 - "$tmp/body" "$tmp/headers" <<PY 2>&1
import json, sys
doc = json.load(open(sys.argv[1]))
hdr = {}
for l in open(sys.argv[2]).read().splitlines()[1:]:
    if ':' in l:
        k, v = l.split(':', 1); hdr[k.strip().lower()] = v.strip()
$2
PY
)"
  if [ $? -eq 0 ]; then pass=$((pass + 1)); else echo "FAIL $1:"; echo "$res"; cat "$tmp/headers" "$tmp/body"; echo; fail=$((fail + 1)); fi
}
# ask NAME WANT_CODE CURL_ARGS...: one request; body in $tmp/body, headers in $tmp/headers.
ask() {
  local name="$1" want="$2"; shift 2
  local got; got="$(curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$@")"
  if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL $name: HTTP $got, expected $want:"; cat "$tmp/headers" "$tmp/body"; echo; fail=$((fail + 1)); fi
}

echo_yaml() {  # echo_yaml FILE CONFIG_BLOCK
  cat >"$1" <<EOF
plugins:
  - name: echo
    kind: "lib:$lib/libhttp_echo.so"
    hooks: [cmf.http_request]
    capabilities: [read_headers, write_headers, read_request]
    config: $2
EOF
}

# ---- what the plugins see --------------------------------------------------------
echo_yaml "$tmp/echo.yaml" '{}'
serve_start echo "$tmp/echo.yaml" && serve_ready echo
u="$serve_url"

ask "nginx form" 403 "$u/v1/authz" -H 'X-Original-URI: /api/orders?id=7&x=%20y' \
  -H 'X-Original-Method: DELETE' -H 'X-Forwarded-Host: shop.example' -H 'X-Forwarded-Proto: https' \
  -H 'X-Request-Id: rid-1' -H 'Authorization: Bearer abc' -H 'X-Dup: a' -H 'X-Dup: b'
json "nginx form: payload, meta, headers" '
d = doc["details"]
assert doc["code"] == "echo" and doc["plugin"] == "echo", doc
assert d["payload"] == {"method": "DELETE", "path": "/api/orders", "query": "id=7&x=%20y",
                        "host": "shop.example", "scheme": "https"}, d["payload"]
assert d["entity_type"] == "http" and d["entity_name"] == "/api/orders", d
assert d["request_id"] == "rid-1", d
h = d["headers"]
assert h["authorization"] == "Bearer abc", h
assert h["x-dup"] == "a, b", h                  # a repeated header is one list
assert h["x-original-uri"] == "/api/orders?id=7&x=%20y", h
assert "connection" not in h and "content-length" not in h, h   # hop-by-hop left out
assert all(k == k.lower() for k in h), h
v = json.loads(hdr["x-cpex-violation"])
assert v == {"code": "echo", "reason": "echo", "plugin": "echo"}, v
assert hdr["content-type"] == "application/json", hdr
'
ask "nginx form, method from the check request" 403 -X PATCH "$u/v1/authz" -H 'X-Original-URI: /p' \
  -H 'Host: gw.example'
json "no X-Original-Method: the check request's method; Host when no X-Forwarded-Host" '
p = doc["details"]["payload"]
assert p == {"method": "PATCH", "path": "/p", "query": "", "host": "gw.example", "scheme": "http"}, p
'
ask "Traefik form" 403 "$u/v1/authz" -H 'X-Forwarded-Method: PUT' -H 'X-Forwarded-Uri: /t/x?q=1' \
  -H 'X-Forwarded-Host: app.example' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-For: 10.1.2.3'
json "Traefik form: payload" '
p = doc["details"]["payload"]
assert p == {"method": "PUT", "path": "/t/x", "query": "q=1", "host": "app.example", "scheme": "https"}, p
assert doc["details"]["headers"]["x-forwarded-for"] == "10.1.2.3"
'
ask "Envoy form" 403 -X POST "$u/v1/authz/envoy/path?z=1" -H 'Host: orig.example' \
  -H 'X-Original-URI: /spoofed' -H 'X-Forwarded-Uri: /spoofed-too' -H 'Content-Length: 0'
json "Envoy form: the check request is the original; forwarding headers do not steer it" '
p = doc["details"]["payload"]
assert p == {"method": "POST", "path": "/envoy/path", "query": "z=1", "host": "orig.example",
             "scheme": "http"}, p
assert doc["details"]["entity_name"] == "/envoy/path"
assert doc["details"]["headers"]["x-original-uri"] == "/spoofed"   # passed on, as a header only
'
ask "Envoy form, the root" 403 "$u/v1/authz/"
json "the root path" 'assert doc["details"]["payload"]["path"] == "/", doc'
ask "Envoy form, HEAD" 403 -I "$u/v1/authz/h"
has "HEAD answers with headers only" "$(cat "$tmp/headers")" 'x-cpex-violation: \{"code":"echo"'

# ---- questions that cannot be answered ---------------------------------------------
ask "both families disagree" 400 "$u/v1/authz" -H 'X-Original-URI: /a' -H 'X-Forwarded-Uri: /b'
json "the refusal names both headers" 'assert "X-Original-URI and X-Forwarded-Uri disagree" in doc["error"], doc'
ask "both families agree" 403 "$u/v1/authz" -H 'X-Original-URI: /a' -H 'X-Forwarded-Uri: /a'
ask "methods disagree" 400 "$u/v1/authz" -H 'X-Original-URI: /a' -H 'X-Original-Method: GET' \
  -H 'X-Forwarded-Method: POST'
ask "no original" 400 "$u/v1/authz"
json "says what to send" 'assert "X-Original-URI (nginx)" in doc["error"] and "/v1/authz/<path>" in doc["error"], doc'
ask "not a path" 400 "$u/v1/authz" -H 'X-Original-URI: http://elsewhere/'
ask "not ASCII" 400 "$u/v1/authz" -H $'X-Original-URI: /caf\xc3\xa9'
ask "a header that is not UTF-8" 400 "$u/v1/authz" -H 'X-Original-URI: /a' -H $'X-Bin: \xff\xfe'
json "names the header" 'assert "x-bin" in doc["error"], doc'
has "each refusal is one log line" "$(cat "$tmp/echo.err")" 'warning: GET /v1/authz: 400: no original request'
serve_stop echo

# ---- the status and headers of a denial, and of an allow -----------------------------
echo_yaml "$tmp/teapot.yaml" '{http_status: 418, http_headers: {retry-after: "5", "bad name": "x", x-n: 3}}'
serve_start teapot "$tmp/teapot.yaml" && serve_ready teapot
ask "details.http_status" 418 "$serve_url/v1/authz/x"
json "details.http_headers" '
assert hdr["retry-after"] == "5", hdr
assert "bad name" not in hdr and "x-n" not in hdr, hdr
'
has "a header that cannot be sent is logged" "$(cat "$tmp/teapot.err")" "response header 'bad name'"
has "a header that is no string is logged" "$(cat "$tmp/teapot.err")" 'http_headers.x-n is not a string'
serve_stop teapot
serve_start forced "$tmp/teapot.yaml" --deny-status 403 && serve_ready forced
ask "--deny-status wins" 403 "$serve_url/v1/authz/x"
serve_stop forced
echo_yaml "$tmp/bad.yaml" '{http_status: 200}'
serve_start bad "$tmp/bad.yaml" && serve_ready bad
ask "a status that is no denial: 403" 403 "$serve_url/v1/authz/x"
serve_stop bad

long="$(printf 'r%.0s' $(seq 5000))"
echo_yaml "$tmp/long.yaml" "{reason: \"$long\\u00e9\\n\"}"
serve_start long "$tmp/long.yaml" && serve_ready long
ask "a long reason" 403 "$serve_url/v1/authz/x"
json "x-cpex-violation stays short and ASCII; the body has it all" '
assert len(hdr["x-cpex-violation"]) <= 1024, len(hdr["x-cpex-violation"])
hv = json.loads(hdr["x-cpex-violation"])
assert hv["code"] == "echo" and hv["reason"] and "r" * 100 in hv["reason"], hv
assert hdr["x-cpex-violation"].isascii()
assert doc["reason"].startswith("r" * 5000 + "\u00e9"), len(doc["reason"])
'
serve_stop long

echo_yaml "$tmp/allow.yaml" '{decision: allow, response_headers: {x-user: "alice", x-ctl: "a\u0001b", content-length: "7"}}'
serve_start allow "$tmp/allow.yaml" && serve_ready allow
ask "an allow" 200 "$serve_url/v1/authz" -H 'X-Original-URI: /x'
has "the plugins' response headers" "$(cat "$tmp/headers")" '^x-user: alice'
hasnt "control characters are not sent" "$(cat "$tmp/headers")" '^x-ctl'
hasnt "no x-cpex-violation on an allow" "$(cat "$tmp/headers")" 'x-cpex-violation'
has "the allow's body is empty" "$(wc -c <"$tmp/body")" '^0$'
serve_stop allow

# ---- no plugin for cmf.http_request: closed ---------------------------------------
gateway_yaml
serve_start closed "$tmp/gateway.yaml" && serve_ready closed
has "a warning at start" "$(cat "$tmp/closed.err")" 'no plugin handles cmf.http_request: /v1/authz answers 503'
ask "503, never an allow" 503 "$serve_url/v1/authz" -H 'X-Original-URI: /x'
serve_stop closed

# ---- examples/serve.yaml -----------------------------------------------------------
serve_yaml
serve_start example "$tmp/serve.yaml" && serve_ready example
ask "an allowed path" 200 "$serve_url/v1/authz" -H 'X-Original-URI: /api/orders'
has "header-inject's header" "$(cat "$tmp/headers")" '^x-cpex-gateway: example/1\.0'
ask "a path no pattern allows" 403 "$serve_url/v1/authz" -H 'X-Original-URI: /admin/users'
json "path_not_allowed" 'assert doc["code"] == "path_not_allowed" and doc["plugin"] == "path-allowlist", doc'
# The burst (40) on one path, then 429 with Retry-After.
python3 - "$serve_url" >"$tmp/burst" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
codes = {}
for i in range(100):
    c.request("GET", "/v1/authz", headers={"X-Original-URI": "/api/burst"})
    r = c.getresponse(); b = r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
    if r.status == 429:
        last = (dict((k.lower(), v) for k, v in r.getheaders()), json.loads(b))
print(json.dumps({"codes": codes, "headers": last[0], "body": last[1]}))
PY
cp "$tmp/burst" "$tmp/out"
py "rate limited: 429 with Retry-After" '
c = doc["codes"]
assert c.get("200", 0) >= 40 and c.get("429", 0) >= 1 and set(c) <= {"200", "429"}, c
assert int(doc["headers"]["retry-after"]) >= 1, doc["headers"]
assert doc["body"]["code"] == "rate_limited" and doc["body"]["details"]["http_status"] == 429, doc
assert json.loads(doc["headers"]["x-cpex-violation"])["code"] == "rate_limited"
'
serve_stop example

finish
