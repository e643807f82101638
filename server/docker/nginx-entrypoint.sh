#!/bin/sh
# Renders the repository's site file for a container: upstreams 127.0.0.1:90xx
# become $WS_UPSTREAM_HOST:90xx (the ws-server service). Nothing else changes.
set -eu
sed "s/server 127\.0\.0\.1:\(90[0-9][0-9]\)/server ${WS_UPSTREAM_HOST}:\1/" \
  /etc/nginx/sites-available/default >/etc/nginx/sites-enabled/default
# The upstream host must resolve when nginx loads its config.
nginx -t -q
exec "$@"
