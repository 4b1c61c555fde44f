# syntax=docker/dockerfile:1
#
# The dropzero image: one `dropzero` binary (reference runtime, mock LLM and harness) on a
# small Debian base, for infra/modules/agent-runtime. It runs as a non-root user and needs
# nothing writable but /tmp, so the task definition can keep the root filesystem read-only
# (the module mounts a task-storage volume at /tmp).
#
#   docker build -t finn-runtime:1.4.2 .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 finn-runtime:1.4.2 \
#       --bind 0.0.0.0 --port 8080 --llm-url http://host.docker.internal:8081
#
# Not built on the machines this repository is developed on (no Docker engine there); see
# infra/README.md for what was and was not verified.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build: a release binary, dependencies cached between builds --------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dropzero \
    && install -m 0755 target/release/dropzero /usr/local/bin/dropzero

# --- runtime: glibc (same release as the build stage), CA roots, curl for the health check -
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 dropzero \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dropzero
COPY --from=build /usr/local/bin/dropzero /usr/local/bin/dropzero
# Numeric, so Kubernetes/ECS "run as non-root" checks can verify it without /etc/passwd.
USER 10001:10001
ENV TMPDIR=/tmp
EXPOSE 8080
# The runtime drains on SIGTERM (docs/protocol.md); ECS's initProcessEnabled (or
# `docker run --init`) forwards it and reaps children.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD curl --fail --silent --show-error --max-time 2 http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dropzero", "runtime"]
CMD ["--bind", "0.0.0.0", "--port", "8080"]
