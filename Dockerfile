# syntax=docker/dockerfile:1
# One image per service: `docker build --target <service> -t <repo>/<service>:<tag> .`
# Services: ingest, orchestrator, segmenter, transcoder, api, indexer, redeemer, and `livefarm` (the CLI with
# `livefarm up`, benchmarks and chain tools). scripts/check-deploy.py keeps the runtime packages
# below in step with what the binaries link (checked with ldd and dpkg in `make test`).

FROM rust:1.95.0-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config clang libclang-dev protobuf-compiler \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
      libavfilter-dev libavdevice-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p livefarm -p livefarm-ingest -p livefarm-orchestrator-service -p livefarm-segmenter \
      -p livefarm-transcoder -p livefarm-api -p livefarm-indexer -p livefarm-redeemer \
 && mkdir -p /out \
 && cp target/release/livefarm target/release/livefarm-ingest target/release/livefarm-orchestrator \
       target/release/livefarm-segmenter target/release/livefarm-transcoder target/release/livefarm-api \
       target/release/livefarm-indexer target/release/livefarm-redeemer /out/

# Services that do not touch media: TLS roots and a non-root user.
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 livefarm \
 && useradd --system --uid 10001 --gid livefarm --home-dir /nonexistent livefarm \
 && mkdir -p /var/lib/livefarm/objects && chown livefarm:livefarm /var/lib/livefarm/objects
USER 10001:10001
# tini forwards SIGTERM so the services drain, and reaps children.
ENTRYPOINT ["/usr/bin/tini", "--"]

# Services that demux, decode or encode: Debian's FFmpeg 5.1 libraries (built with NVENC/NVDEC
# support, which loads the driver's libraries at run time).
FROM base AS media
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavfilter8 \
      libavdevice59 \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001

FROM base AS ingest
COPY --from=build /out/livefarm-ingest /usr/local/bin/
EXPOSE 1935 8890/udp 9935 9936
CMD ["livefarm-ingest"]

FROM base AS orchestrator
COPY --from=build /out/livefarm-orchestrator /usr/local/bin/
EXPOSE 8935 8936
CMD ["livefarm-orchestrator"]

FROM media AS segmenter
COPY --from=build /out/livefarm-segmenter /usr/local/bin/
EXPOSE 9940 9941
CMD ["livefarm-segmenter"]

FROM media AS transcoder
COPY --from=build /out/livefarm-transcoder /usr/local/bin/
# The NVIDIA container runtime mounts the driver's NVENC/NVDEC libraries only with `video`.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,utility
EXPOSE 9460 9461
CMD ["livefarm-transcoder"]

# FFmpeg's libraries: the api remuxes a session's recording into an MP4
FROM media AS api
COPY --from=build /out/livefarm-api /usr/local/bin/
EXPOSE 8080 9482
CMD ["livefarm-api"]

FROM base AS indexer
COPY --from=build /out/livefarm-indexer /usr/local/bin/
EXPOSE 9470 9471
CMD ["livefarm-indexer"]

FROM base AS redeemer
COPY --from=build /out/livefarm-redeemer /usr/local/bin/
EXPOSE 9480 9481
CMD ["livefarm-redeemer"]

# Everything in one process (in-process bus, segments under /var/lib/livefarm, off-chain).
FROM media AS livefarm
COPY --from=build /out/livefarm /usr/local/bin/
EXPOSE 1935 8080 8890/udp 8935 9090 9935
CMD ["livefarm", "up", "--data-dir", "/var/lib/livefarm/objects", \
     "--push-listen", "0.0.0.0:9935", "--rtmp-listen", "0.0.0.0:1935", \
     "--srt-listen", "0.0.0.0:8890", "--orchestrator-listen", "0.0.0.0:8935", \
     "--playback-listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090"]
