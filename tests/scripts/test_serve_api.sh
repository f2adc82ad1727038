#!/usr/bin/env bash
# `cpex serve` on the real binary, its own API: POST /v1/invoke answers every
# line of examples/requests.jsonl exactly as `cpex run --json` does (line by
# line, a bad request a 400 with the same error object), context ids carry
# plugin state between requests and expire after --context-ttl, /healthz,
# /metrics in the Prometheus text format (checked by the Prometheus
# client's own parser), wrong methods, paths and content types, a Unix
# socket, the command line, a clean stop on SIGTERM and SIGINT, and a
# plugin that calls exit() (exit code 1, the plugin named).
#   bash test_serve_api.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"

gateway_yaml

# ---- the command line ----------------------------------------------------------
expect "serve without CONFIG" 2 "$cpex" serve
has "names what is missing" "$err" 'missing CONFIG'
expect "bad --listen" 2 "$cpex" serve "$tmp/gateway.yaml" --listen nowhere
has "--listen needs ADDR:PORT" "$err" "--listen needs ADDR:PORT"
expect "--listen and --unix" 2 "$cpex" serve "$tmp/gateway.yaml" --listen 127.0.0.1:1 --unix "$tmp/s"
has "they exclude each other" "$err" 'exclude each other'
expect "bad --threads" 2 "$cpex" serve "$tmp/gateway.yaml" --threads 0
expect "bad --context-ttl" 2 "$cpex" serve "$tmp/gateway.yaml" --context-ttl -1
expect "bad --deny-status" 2 "$cpex" serve "$tmp/gateway.yaml" --deny-status 200
expect "unknown option" 2 "$cpex" serve "$tmp/gateway.yaml" --bogus
expect "serve --help" 0 "$cpex" serve --help
has "help names the endpoints" "$out" '/v1/invoke.*'
has "help names the authz endpoint" "$out" '/v1/authz'
expect "cpex help serve" 0 "$cpex" help serve
expect "main help lists serve" 0 "$cpex" --help
has "serve in the list" "$out" '^  serve CONFIG'
expect "a configuration that does not load" 1 "$cpex" serve "$tmp/nonexistent.yaml" --listen 127.0.0.1:0
has "says so" "$err" "cannot load"

# ---- /v1/invoke answers as `cpex run --json` -----------------------------------------
expect "cpex run --json (the reference)" 1 \
  "$cpex" run "$tmp/gateway.yaml" --input "$src/examples/requests.jsonl" --json --no-executions
cp "$tmp/out" "$tmp/run.jsonl"
serve_start serve "$tmp/gateway.yaml" && serve_ready serve
has "loopback by default" "$serve_url" '^http://127\.0\.0\.1:[0-9]+$'
# One POST per request line, in order, on one connection (as a client
# would); status and body kept per line.
python3 - "$serve_url" "$src/examples/requests.jsonl" "$tmp/serve.jsonl" <<'PY' || { echo "FAIL replay"; fail=$((fail + 1)); }
import http.client, json, sys, urllib.parse
url, reqs, out = sys.argv[1:4]
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
with open(reqs) as f, open(out, "w") as o:
    for n, line in enumerate(f, 1):
        body = line.rstrip("\r\n")
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        c.request("POST", "/v1/invoke", body=body.encode(), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        o.write(json.dumps({"line": n, "status": r.status, "type": r.getheader("Content-Type"),
                            "body": json.loads(r.read())}) + "\n")
PY
pycheck_lines() {  # compare $tmp/run.jsonl and $tmp/serve.jsonl
  python3 - "$tmp/run.jsonl" "$tmp/serve.jsonl" <<'PY'
import json, re, sys
run = [json.loads(l) for l in open(sys.argv[1])]
srv = [json.loads(l) for l in open(sys.argv[2])]
bad = []
def norm(d):
    # The only fields that differ from run to run: how long a rate-limited
    # caller must wait depends on the milliseconds between the requests.
    v = d.get("violation")
    if v and v.get("code") == "rate_limited":
        v["details"]["retry_after_ms"] = "N"
        v["reason"] = re.sub(r"retry in \d+ ms", "retry in N ms", v["reason"])
    return d
if len(run) != len(srv):
    bad.append("%d run lines, %d served" % (len(run), len(srv)))
for a, b in zip(run, srv):
    line = a.pop("line")
    if b["line"] != line:
        bad.append("line %d answered as line %d" % (line, b["line"]))
    want = 400 if "error" in a else 200
    if b["status"] != want:
        bad.append("line %d: status %d, expected %d" % (line, b["status"], want))
    if b["type"] != "application/json":
        bad.append("line %d: content type %r" % (line, b["type"]))
    if "line" in b["body"]:
        bad.append("line %d: a served result has no line" % line)
    if norm(a) != norm(b["body"]):
        bad.append("line %d differs:\n run   %s\n serve %s" % (line, json.dumps(a), json.dumps(b["body"])))
for x in bad:
    print("FAIL " + x)
print("compared %d lines, %d allowed, %d denied, %d errors" % (len(run),
      sum(1 for x in run if x.get("decision") == "allow"), sum(1 for x in run if x.get("decision") == "deny"),
      sum(1 for x in run if "error" in x)))
sys.exit(1 if bad else 0)
PY
}
if res="$(pycheck_lines)"; then pass=$((pass + 1)); echo "$res"; else echo "$res"; fail=$((fail + 1)); fi
has "the replay covered the whole file" "$res" 'compared 32 lines, 23 allowed, 5 denied, 4 errors'

# ---- errors, methods, paths ---------------------------------------------------
code() { curl -s -o "$tmp/body" -w '%{http_code}' "$@"; }
want_code() {  # want_code NAME CODE CURL_ARGS...
  local name="$1" want="$2"; shift 2
  local got; got="$(code "$@")"
  if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL $name: HTTP $got, expected $want:"; cat "$tmp/body"; echo; fail=$((fail + 1)); fi
}
want_code "invoke without a JSON content type" 415 -X POST --data '{}' "$serve_url/v1/invoke"
has "415 says what to send" "$(cat "$tmp/body")" '"error":"send the request object with Content-Type: application/json"'
want_code "GET /v1/invoke" 405 "$serve_url/v1/invoke"
has "405 is JSON" "$(cat "$tmp/body")" '^\{"error":"/v1/invoke takes POST"\}$'
want_code "an empty body" 400 -X POST -H 'Content-Type: application/json' "$serve_url/v1/invoke"
has "400 names the JSON error" "$(cat "$tmp/body")" '"error":"invalid JSON'
want_code "not an object" 400 -H 'Content-Type: application/json' --data '[1]' "$serve_url/v1/invoke"
want_code "unknown path" 404 "$serve_url/v2/nothing"
want_code "POST /healthz" 405 -X POST "$serve_url/healthz"
want_code "/v1/null is off unless asked for" 404 "$serve_url/v1/null"
want_code "charset in the content type" 200 -H 'Content-Type: application/json; charset=utf-8' \
  --data '{"hook":"cmf.http_request","payload":{"method":"GET","path":"/"}}' "$serve_url/v1/invoke"
has "cmf.http_request takes a JSON payload by default" "$(cat "$tmp/body")" '"decision":"allow"'
want_code "/healthz" 200 "$serve_url/healthz"
has "healthz body" "$(cat "$tmp/body")" '^\{"status":"ok","plugins":6,"generation":1,"reload":\{"watching":true,"applied":1,"failed":0\}\}$'
has "one log line per error" "$(cat "$tmp/serve.err")" '^cpex serve: warning: POST /v1/invoke: 415: send the request'
count "the error lines of the replay were logged" "$(cat "$tmp/serve.err")" 'POST /v1/invoke: 400: ' 6

# ---- /metrics ---------------------------------------------------------------
want_code "/metrics" 200 "$serve_url/metrics"
cp "$tmp/body" "$tmp/metrics.txt"
# The Prometheus client's parser (Debian python3-prometheus-client); the
# interpreter that has it (a pyenv python may shadow Debian's).
promparse=""
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then promparse="$p"; break; fi
done
if [ -z "$promparse" ]; then
  echo "FAIL no python3 with prometheus_client (scripts/deps.sh test installs python3-prometheus-client)"
  fail=$((fail + 1))
elif res="$("$promparse" - "$tmp/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}
def fail(msg):
    print("FAIL metrics: " + msg); sys.exit(1)
for name, typ in [("cpex_serve_requests", "counter"), ("cpex_serve_request_duration_seconds", "histogram"),
                  ("cpex_serve_decisions", "counter"), ("cpex_serve_connections_open", "gauge"),
                  ("cpex_serve_contexts", "gauge"), ("cpex_serve_ready", "gauge")]:
    if name not in fams or fams[name].type != typ:
        fail("%s is missing or not a %s" % (name, typ))
    if not fams[name].documentation:
        fail("%s has no HELP" % name)
def sample(fam, suffix, **labels):
    for s in fams[fam].samples:
        if s.name == fam + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    fail("no sample %s%s%s" % (fam, suffix, labels))
if sample("cpex_serve_requests", "_total", endpoint="invoke", code="200") != 29:
    fail("29 invokes answered 200 (the replay and one more)")
if sample("cpex_serve_requests", "_total", endpoint="invoke", code="400") != 6:
    fail("6 invokes answered 400")
if sample("cpex_serve_decisions", "_total", endpoint="invoke", decision="deny") != 5:
    fail("5 denials")
# A histogram: buckets grow, +Inf is the count.
buckets = [(s.labels["le"], s.value) for s in fams["cpex_serve_request_duration_seconds"].samples
           if s.name.endswith("_bucket") and s.labels["endpoint"] == "invoke"]
vals = [v for _, v in buckets]
if vals != sorted(vals) or buckets[-1][0] != "+Inf":
    fail("buckets not cumulative: %s" % buckets)
if buckets[-1][1] != sample("cpex_serve_request_duration_seconds", "_count", endpoint="invoke"):
    fail("+Inf bucket is not the count")
if sample("cpex_serve_ready", "") != 1:
    fail("ready")
if sample("cpex_serve_contexts", "") < 1:
    fail("the replay left context ids")
print("metrics ok: %d families" % len(fams))
PY
)"; then pass=$((pass + 1)); echo "$res"; else echo "$res"; fail=$((fail + 1)); fi
has "metrics content type" "$(curl -s -D - -o /dev/null "$serve_url/metrics")" '[Cc]ontent-[Tt]ype: text/plain; version=0\.0\.4'
serve_stop serve TERM 0
has "stops cleanly" "$(cat "$tmp/serve.err")" 'cpex serve: info: stopped$'

# ---- context ids expire ---------------------------------------------------------
# The allowlist approves a tool call in the pre hook and looks for the
# approval in the post hook's context: within the TTL the result passes,
# after it the id is gone and the result is refused.
pre='{"hook":"cmf.tool_pre_invoke","context":"CTX","payload":{"role":"assistant","content":[{"content_type":"tool_call","content":{"tool_call_id":"call-1","name":"get_weather","arguments":{}}}]}}'
post='{"hook":"cmf.tool_post_invoke","context":"CTX","payload":{"role":"tool","content":[{"content_type":"tool_result","content":{"tool_call_id":"call-1","tool_name":"get_weather","content":"Sunny"}}]}}'
invoke() { curl -s -H 'Content-Type: application/json' --data "${1//CTX/$2}" "$serve_url/v1/invoke"; }
serve_start ttl "$tmp/gateway.yaml" --context-ttl 1 && serve_ready ttl
invoke "$pre" kept >/dev/null
has "within the TTL the post hook sees the pre hook's state" "$(invoke "$post" kept)" '"decision":"allow"'
invoke "$pre" dropped >/dev/null
sleep 2.5
has "after the TTL the state is gone" "$(invoke "$post" dropped)" '"code":"tool_result_unapproved"'
# The housekeeping thread drops an id nobody asks for again.
invoke "$pre" abandoned >/dev/null
for i in $(seq 100); do
  m="$(curl -s "$serve_url/metrics")"
  grep -q '^cpex_serve_contexts 0$' <<<"$m" && break
  sleep 0.1
done
has "an abandoned id expires by itself" "$m" '^cpex_serve_contexts 0$'
has "expiries counted" "$m" '^cpex_serve_contexts_expired_total [2-9]'
serve_stop ttl INT 0
has "SIGINT stops too" "$(cat "$tmp/ttl.err")" 'SIGINT: stopping'

# ---- a Unix socket ------------------------------------------------------------
serve_start unix "$tmp/gateway.yaml" --unix "$tmp/cpex.sock"
has "unix address" "$serve_url" "^unix:$tmp/cpex.sock\$"
ok=0
for i in $(seq 300); do
  [ "$(curl -s --unix-socket "$tmp/cpex.sock" -o /dev/null -w '%{http_code}' http://x/healthz)" = 200 ] && { ok=1; break; }
  sleep 0.1
done
[ "$ok" = 1 ] && pass=$((pass + 1)) || { echo "FAIL unix socket: no 200"; cat "$tmp/unix.err"; fail=$((fail + 1)); }
has "invoke over the socket" "$(curl -s --unix-socket "$tmp/cpex.sock" -H 'Content-Type: application/json' \
  --data "$(sed -n 6p "$src/examples/requests.jsonl")" http://x/v1/invoke)" '"decision":"allow"'
expect "a second server on the same socket" 1 "$cpex" serve "$tmp/gateway.yaml" --unix "$tmp/cpex.sock"
has "says a server answers there" "$err" 'a server already answers on'
serve_stop unix TERM 0
[ ! -e "$tmp/cpex.sock" ] && pass=$((pass + 1)) || { echo "FAIL the socket file is left behind"; fail=$((fail + 1)); }

# ---- a plugin that ends the process -------------------------------------------
cat >"$tmp/quit.yaml" <<EOF
plugins:
  - name: quitter
    kind: "lib:$lib/libexit_call.so"
    hooks: [cmf.tool_pre_invoke]
EOF
serve_start quit "$tmp/quit.yaml" && serve_ready quit
curl -s -o /dev/null -H 'Content-Type: application/json' --data "$(sed -n 6p "$src/examples/requests.jsonl")" \
  "$serve_url/v1/invoke"
serve_stop quit TERM 1
has "the exit is a failure that names the plugin" "$(cat "$tmp/quit.err")" \
  "^cpex serve: did not finish: plugin 'quitter' \(sequential\), from $lib/libexit_call.so, ended the process \(it called exit\) while serving requests"

# ---- the port is taken --------------------------------------------------------
serve_start first "$tmp/gateway.yaml"
port="${serve_url##*:}"
expect "a taken port" 1 "$cpex" serve "$tmp/gateway.yaml" --listen "127.0.0.1:$port"
has "names the cause" "$err" 'Address already in use'
serve_stop first TERM 0

finish
