# nginx with the repository's nginx/ files, unchanged in the image; the entrypoint
# points the upstreams at the ws-server container (WS_UPSTREAM_HOST) instead of
# 127.0.0.1, so nginx/ stays the single source.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx curl >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && rm -f /etc/nginx/sites-enabled/default \
 # Logs to the container's output, like the official image.
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/sites-available/default /etc/nginx/sites-available/default
COPY server/docker/nginx-entrypoint.sh /usr/local/bin/nginx-entrypoint
ENV WS_UPSTREAM_HOST=ws-server
EXPOSE 80
ENTRYPOINT ["/usr/local/bin/nginx-entrypoint"]
CMD ["nginx", "-g", "daemon off;"]
