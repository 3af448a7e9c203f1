# syntax=docker/dockerfile:1
# mdp container image: a static binary on scratch with CA certificates, run
# as a non-root user (65532), state and stores under the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t mdp .
#   docker run -p 8080:8080 -v mdp-data:/data mdp serve --listen 0.0.0.0:8080 --token ...
#
# deploy/image builds the same final stage without a daemon (from this
# file's USER, ENTRYPOINT, EXPOSE, VOLUME, WORKDIR and LABEL lines) and its
# test checks the result; see README, Deploy.

ARG GO_IMAGE=golang:1.26-bookworm

FROM --platform=${BUILDPLATFORM} ${GO_IMAGE} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X github.com/mdpio/mdp/cli.version=${VERSION} -X github.com/mdpio/mdp/cli.commit=${COMMIT} -X github.com/mdpio/mdp/cli.date=${DATE}" \
      -o /out/mdp ./cmd/mdp \
 && mkdir -p /out/rootfs/etc/ssl/certs /out/rootfs/data /out/rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /out/rootfs/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/data:/sbin/nologin' > /out/rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/rootfs/etc/group \
 && chown 65532:65532 /out/rootfs/data && chmod 1777 /out/rootfs/tmp

FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
COPY --from=build /out/rootfs/ /
COPY --from=build /out/mdp /usr/local/bin/mdp
LABEL org.opencontainers.image.title="mdp" \
      org.opencontainers.image.description="Market-data streaming engine" \
      org.opencontainers.image.source="https://github.com/mdpio/mdp" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mdp"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--state", "/data/mdp-state.db"]
