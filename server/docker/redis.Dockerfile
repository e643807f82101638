# Redis for the compose stack, from Debian's package: builds from the same base
# image as the rest, so no other image has to be pulled. (With a registry,
# `image: redis:7` works as well.)
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
# Transient data (sessions with TTLs, counters): no persistence. Reachable on the
# compose network only; no port is published.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
