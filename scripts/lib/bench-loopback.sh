# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the benches sourcing it
# Shared by the open-loop benchmarks (benches/loadgen-rate, benches/stall,
# benches/find-rate): installing the peers they run, the ocibench release build, a
# one-worker nginx and the Python test server on free loopback ports, and the cleanup
# that stops only what was started here. benches/loadgen keeps its own copy (older).

log() { printf '%s\n' "$*" >&2; }

# need_tools CMD...: installs the Debian packages (and oha, via cargo) providing the
# commands named that are missing. Needs root or sudo for apt.
need_tools() {
  local apt_pkgs=() cmd
  for cmd in "$@"; do
    case $cmd in
      oha) ;;
      time) [ -x /usr/bin/time ] || apt_pkgs+=(time) ;;
      nginx) command -v nginx >/dev/null || apt_pkgs+=(nginx-light) ;;
      python3) command -v python3 >/dev/null || apt_pkgs+=(python3) ;;
      *) command -v "$cmd" >/dev/null || apt_pkgs+=("$cmd") ;;
    esac
  done
  if ((${#apt_pkgs[@]})); then
    log "installing: ${apt_pkgs[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  fi
  case " $* " in
    *" oha "*)
      command -v oha >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
      if ! command -v oha >/dev/null; then
        log "installing oha (cargo install oha --locked; several minutes)"
        cargo install oha --locked >&2
      fi ;;
  esac
}

# build_ocibench: release build; sets OCIBENCH, and OCIBENCH_RATE=1 when this build
# has the open-loop flags (`bench --rate`, issue 14), else 0 (the peers still run);
# OCIBENCH_HELP holds its `bench --help`.
build_ocibench() {
  log "building ocibench --release"
  cargo build --release --quiet
  OCIBENCH="${CARGO_TARGET_DIR:-target}/release/ocibench"
  OCIBENCH_HELP=$("$OCIBENCH" bench --help 2>/dev/null || true)
  case $OCIBENCH_HELP in *--rate*) OCIBENCH_RATE=1 ;; *) OCIBENCH_RATE=0 ;; esac
}

# Processes started here, stopped (and only they) by stop_started at exit.
STARTED_PIDS=()
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}

# wait_port PID PORT: waits up to 5 s for PORT to accept while PID lives.
wait_port() {
  local pid=$1 port=$2
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_nginx DIR [HTTP_DIRECTIVES] [SERVER_DIRECTIVES]: nginx with one worker and
# keep-alive, serving DIR/www on a free loopback port; sets NGINX_PORT and NGINX_PID.
# The directives are spliced into the http and server blocks (limit_req, ...).
start_nginx() {
  local dir=$1 http_extra=${2:-} server_extra=${3:-} port
  mkdir -p "$dir/www" "$dir/logs" "$dir/tmp"
  # nginx started as root serves as nobody: mktemp's 0700 directories would be 403s.
  chmod 755 "$dir" "$dir/www"
  [ -f "$dir/www/data.json" ] ||
    printf '{"service":"demo","status":"ok","version":"1.0.0","items":[1,2,3]}\n' > "$dir/www/data.json"
  chmod 644 "$dir/www/data.json"
  for _ in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/json;
  $http_extra
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
    root $dir/www;
    $server_extra
  }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/logs/start.log" &
    NGINX_PID=$!
    if wait_port "$NGINX_PID" "$port"; then
      STARTED_PIDS+=("$NGINX_PID"); NGINX_PORT=$port; return 0
    fi
    kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true
  done
  log "error: nginx did not start"; cat "$dir/logs/"* >&2
  return 1
}

# start_slow_server DIR ARGS...: benches/slow_server.py on a port the kernel picks;
# its stdout goes to DIR/server.out (the port first, its summary at exit). Sets
# SERVER_PORT and SERVER_PID.
start_slow_server() {
  local dir=$1; shift
  # Created here, not by the background job's redirection, which may come after
  # the first read below.
  : > "$dir/server.out"
  python3 benches/slow_server.py "$@" > "$dir/server.out" 2> "$dir/server.err" &
  SERVER_PID=$!
  STARTED_PIDS+=("$SERVER_PID")
  SERVER_PORT=""
  for _ in $(seq 50); do
    SERVER_PORT=$(awk '/^port /{ print $2; exit }' "$dir/server.out" || true)
    [ -n "$SERVER_PORT" ] && wait_port "$SERVER_PID" "$SERVER_PORT" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "error: benches/slow_server.py did not start"; cat "$dir/server.err" >&2
  return 1
}

# stop_slow_server DIR: stops it; sets SERVER_SUMMARY to its summary line (requests
# served, ...). Not in a $(...) subshell: only this shell can wait for its child.
stop_slow_server() {
  local dir=$1 pid=$SERVER_PID p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
  SERVER_SUMMARY=$(grep '^server ' "$dir/server.out" || echo "(the server printed no summary)")
}

# measured OUT ERR CMD...: runs CMD under /usr/bin/time, its stdout in OUT; appends
# "user sys max_rss_kib" to OUT.time. A non-zero exit is reported, not fatal.
measured() {
  local out=$1 err=$2; shift 2
  /usr/bin/time -f "%U %S %M" -o "$out.time" "$@" > "$out" 2> "$err" || {
    log "warning: $1 exited non-zero ($*)"; tail -3 "$err" >&2; }
}
