# redis.sh — a real redis-server for the script tests (sourced after lib.sh;
# not named test_*.sh, so ctest does not run it). Started on a free
# loopback port with a directory in $tmp and no persistence; stopped when
# the script exits, whatever happened. Never a system Redis.
redis_bin="${CPEX_REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
redis_cli="$(command -v redis-cli || echo /usr/bin/redis-cli)"
if [ ! -x "$redis_bin" ] || [ ! -x "$redis_cli" ]; then
  echo "FAIL redis-server / redis-cli not found: install the Debian package redis-server (scripts/deps.sh test)"
  exit 1
fi
redis_pid=""
redis_port=""
trap 'redis_stop; rm -rf "$tmp"' EXIT

redis_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# redis_start [PORT]: start on PORT (default: a free one); waits until it answers (10 s at most).
redis_start() {
  redis_port="${1:-$(redis_free_port)}"
  mkdir -p "$tmp/redis"
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp/redis" --daemonize no --logfile "$tmp/redis/log" </dev/null >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 200); do
    if "$redis_cli" -p "$redis_port" ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.05
  done
  echo "FAIL redis-server on port $redis_port did not answer in 10 s"; cat "$tmp/redis/log"
  return 1
}
redis_stop() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
    redis_pid=""
  fi
}
rcli() { "$redis_cli" -p "$redis_port" "$@"; }
