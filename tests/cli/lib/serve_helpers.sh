# Helpers for the live endpoint's CLI tests (sourced).

# A TCP port that was free a moment ago on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (at most $2 seconds, default 20) until $1 answers an HTTP request; 0 when it did.
wait_http() {
  _n=$(( ${2:-20} * 10 ))
  while [ "$_n" -gt 0 ]; do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}

# The status code of a request (curl arguments follow).
status_of() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"
}

# Stops a background process started by this test: TERM, then KILL after 5 s. Never waits more.
stop_pid() {
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || return 0
  _n=50
  while kill -0 "$1" 2>/dev/null && [ "$_n" -gt 0 ]; do sleep 0.1; _n=$((_n - 1)); done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

# Stops a background process and its direct children (perfopt run and its command).
stop_tree() {
  [ -n "${1:-}" ] || return 0
  for _c in $(pgrep -P "$1" 2>/dev/null); do stop_pid "$_c"; done
  stop_pid "$1"
}
