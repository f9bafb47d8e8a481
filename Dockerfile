# videoshard worker image: a static Go build on Debian with ffmpeg.
#   docker build -t videoshard .
#   docker run -v $PWD/configs/worker.yaml:/etc/videoshard/worker.yaml:ro \
#     -v shards:/var/lib/videoshard -p 50061:50061 videoshard
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/worker ./cmd/worker \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/master ./cmd/master \
 && GOBIN=/out go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/videoshard videoshard \
 && mkdir -p /var/lib/videoshard /etc/videoshard && chown videoshard /var/lib/videoshard
COPY --from=build /out/ /usr/local/bin/
COPY configs/worker.yaml /etc/videoshard/worker.yaml
USER videoshard
# In a container the worker must listen beyond loopback; the port is only
# reachable where it is published. A worker listening beyond loopback with
# neither client certificates nor tokens (TLS alone included) refuses to
# start unless insecure is true, so the image sets it: configure tls.* and
# auth.* (see README, "Security") in the mounted config before publishing
# the port beyond a trusted network, and set VIDEOSHARD_INSECURE=false to
# have the worker insist on it.
ENV VIDEOSHARD_LISTEN=0.0.0.0:50061 VIDEOSHARD_STORAGE_ROOT=/var/lib/videoshard VIDEOSHARD_INSECURE=true
VOLUME /var/lib/videoshard
# Prometheus metrics, when turned on: -e VIDEOSHARD_METRICS_LISTEN=0.0.0.0:9091
# (no TLS or auth on it: publish it only to the network Prometheus scrapes
# from; pprof, metrics.pprof, is refused there unless insecure is true).
EXPOSE 50061 9091
# The health service needs no token. With tls.* configured the probe must
# speak TLS too: override this HEALTHCHECK (docker run --health-cmd, or a
# derived image) adding -tls -tls-ca-cert=CA.pem -tls-server-name=NAME, and
# for mutual TLS -tls-client-cert=CERT.pem -tls-client-key=KEY.pem.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s \
  CMD ["grpc-health-probe", "-addr=127.0.0.1:50061"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["worker", "--config", "/etc/videoshard/worker.yaml"]
