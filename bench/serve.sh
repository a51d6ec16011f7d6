#!/usr/bin/env bash
# Serve a generated benchmark site with nginx, on 127.0.0.1 only.
#
#   bench/serve.sh start PORT DIR   start nginx for DIR on 127.0.0.1:PORT; prints the master's pid
#   bench/serve.sh stop PORT [DIR]  stop the instance of PORT (by its pid file)
#   bench/serve.sh status PORT      print the master's and worker's pids; exit 1 if not running
#
# Each instance lives under bench/.work/nginx-PORT/ (its nginx.conf, pid file, error log and temp
# folders). One worker process, keep-alive, no access log, sendfile, gzip_static on: clients that
# send Accept-Encoding: gzip get DIR/x.html.gz as it is, so nginx spends no CPU compressing.
# nginx is installed with apt-get if it is missing.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$BENCH/.work"

fail() { echo "serve.sh: $*" >&2; exit 1; }

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

nginx_path() {
  if command -v nginx >/dev/null 2>&1; then command -v nginx; return; fi
  [ -x /usr/sbin/nginx ] && { echo /usr/sbin/nginx; return; }
  echo "serve.sh: nginx is missing; installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq nginx >&2 || fail "could not install nginx"
  command -v nginx 2>/dev/null || echo /usr/sbin/nginx
}

valid_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1024 ] && [ "$1" -le 65535 ] || fail "not a usable port: $1"
}

running() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start() {
  local port="$1" dir="$2"
  valid_port "$port"
  [ -f "$dir/index.html" ] || fail "$dir has no index.html; generate a site first (bench/site.py)"
  dir="$(cd "$dir" && pwd)"
  local nginx
  nginx="$(nginx_path)"
  local prefix="$WORK/nginx-$port"
  mkdir -p "$prefix/temp"
  if [ -f "$prefix/nginx.pid" ] && running "$(cat "$prefix/nginx.pid")"; then
    fail "an instance already runs on port $port (pid $(cat "$prefix/nginx.pid")); stop it first"
  fi
  # Workers drop root; www-data must be able to read the site (it is world-readable by default).
  local user=""
  if [ "$(id -u)" = 0 ]; then
    if id www-data >/dev/null 2>&1; then user="user www-data;"; else user="user nobody;"; fi
  fi
  cat >"$prefix/nginx.conf" <<CONF
# written by bench/serve.sh for 127.0.0.1:$port
$user
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 2048; }
http {
    types { text/html html; application/json json; text/plain txt jsonl; }
    default_type application/octet-stream;
    charset utf-8;
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    gzip off;
    gzip_static on;
    gzip_vary on;
    client_body_temp_path $prefix/temp/client;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    server {
        listen 127.0.0.1:$port backlog=2048;
        server_name bench;
        root $dir;
        location / { try_files \$uri =404; }
    }
}
CONF
  "$nginx" -t -q -p "$prefix" -c "$prefix/nginx.conf" || fail "nginx rejected $prefix/nginx.conf"
  "$nginx" -p "$prefix" -c "$prefix/nginx.conf"
  local _
  for _ in $(seq 50); do
    if [ -s "$prefix/nginx.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      cat "$prefix/nginx.pid"
      return 0
    fi
    sleep 0.1
  done
  fail "nginx did not start on 127.0.0.1:$port (see $prefix/error.log)"
}

stop() {
  local port="$1"
  valid_port "$port"
  local pidfile="$WORK/nginx-$port/nginx.pid"
  if [ ! -f "$pidfile" ]; then
    echo "serve.sh: no nginx of ours on port $port" >&2
    return 0
  fi
  local pid _
  pid="$(cat "$pidfile")"
  if running "$pid"; then
    kill -QUIT "$pid"  # graceful: the master waits for its worker
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -TERM "$pid"
  fi
  rm -f "$pidfile"
  echo "serve.sh: stopped nginx $pid on port $port" >&2
}

status() {
  local port="$1"
  local pidfile="$WORK/nginx-$port/nginx.pid"
  if [ -f "$pidfile" ] && running "$(cat "$pidfile")"; then
    local pid
    pid="$(cat "$pidfile")"
    echo "master $pid worker $(cat "/proc/$pid/task/$pid/children" 2>/dev/null)"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) [ $# -eq 3 ] || { usage >&2; exit 2; }; start "$2" "$3" ;;
  stop) [ $# -ge 2 ] && [ $# -le 3 ] || { usage >&2; exit 2; }; stop "$2" ;;
  status) [ $# -eq 2 ] || { usage >&2; exit 2; }; status "$2" ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
