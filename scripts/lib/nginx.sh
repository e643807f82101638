# Renders the repository's nginx config (nginx/) to run from a scratch directory:
# no root, logs and pid file inside it, the 12 upstreams on any base port. Shared by
# scripts/lib/stack.sh (run-stack.sh, demo.sh) and scripts/scale.sh. Sourced, not run.

NGINX_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# nginx_conf DIR [WORKERS]: writes DIR/nginx.conf with every path under DIR (and
# worker_processes WORKERS when given), and the directories it names.
nginx_conf() {
  local dir=$1 workers=${2:-}
  local sed_args=(-e "s|^user www-data;||; s|/etc/nginx/|$dir/|g; s|/var/log/nginx/|$dir/logs/|g; s|/run/nginx.pid|$dir/nginx.pid|")
  [ -z "$workers" ] || sed_args+=(-e "s|^worker_processes [0-9a-z]*;|worker_processes $workers;|")
  mkdir -p "$dir/sites-enabled" "$dir/conf.d" "$dir/logs"
  sed "${sed_args[@]}" "$NGINX_REPO/nginx/nginx.conf" >"$dir/nginx.conf"
}

# nginx_site LISTEN BASE_PORT [SED_ARGS...]: the site on stdout, listening on LISTEN
# (port or address:port) with upstreams BASE_PORT..BASE_PORT+11 instead of 9001-9012;
# further sed arguments edit it more.
nginx_site() {
  local listen=$1 base=$2 i
  shift 2
  local sed_args=(-e "s|listen 80 |listen $listen |")
  for i in $(seq 0 11); do
    sed_args+=(-e "s|127\.0\.0\.1:$((9001 + i)) |127.0.0.1:$((base + i)) |")
  done
  sed "${sed_args[@]}" "$@" "$NGINX_REPO/nginx/sites-available/default"
}
