# Stand-in for redis:7 where no registry is reachable: Debian bookworm's redis-server (7.0).
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data
WORKDIR /data
CMD ["redis-server"]
