# MinIO's community edition is published as source only: build the pinned commit with Go,
# then keep just the binary (and curl for the healthcheck) in a slim image. Both bases are build
# arguments (GOLANG_IMAGE, DEBIAN_IMAGE); the pin is scripts/build_minio.sh's.
ARG GOLANG_IMAGE=golang:1.24
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${GOLANG_IMAGE} AS build
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 minio \
    && mkdir /data && chown minio /data
COPY --from=build /out/minio /usr/local/bin/minio
USER minio
VOLUME /data
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
