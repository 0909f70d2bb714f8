# syntax=docker/dockerfile:1
# The ledger's service containers (ECS Fargate): one build stage, two runtime targets.
#   docker build --target ledger-api       -t ledger-api .
#   docker build --target ledger-projector -t ledger-projector .
# BuildKit is required (the default builder since Docker 23) for the cache mounts below.

# ---- build -----------------------------------------------------------------------------------
# The workspace's toolchain (Cargo.toml rust-version 1.95; there is no rust-toolchain.toml) on
# Debian 12 (bookworm), the same glibc as the distroless runtime below.
FROM rust:1.95.0-bookworm AS builder
WORKDIR /app
COPY . .
# Cargo's registry and the target directory live in BuildKit cache mounts, so a rebuild after a
# source change downloads nothing and recompiles only the crates that changed. A cache mount is not
# part of the image, so the binaries are copied out of it in the same step. Only the service
# binaries, their health check and the admin tool (`ledger migrate`, `ledger create-tables`, dead
# letters) are built: not the Lambdas, the benchmark or the tests.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/app/target,sharing=locked \
    cargo build --release --locked -p ledger-bootstrap \
        --bin ledger-api --bin ledger-projector --bin ledger-healthcheck --bin ledger \
    && mkdir -p /out/bin /out/var/lib/ledger \
    && cp target/release/ledger-api target/release/ledger-projector \
        target/release/ledger-healthcheck target/release/ledger /out/bin/

# ---- runtime base ----------------------------------------------------------------------------
# Distroless: glibc, libgcc (the Rust binaries need both), CA certificates and tzdata; no shell, no
# package manager. The AWS SDK's HTTPS client (hyper-rustls with rustls-native-certs) reads the
# system roots from /etc/ssl/certs, which this image has. `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# Embedded SQLite (and the SQLite read model beside DynamoDB) lives here, not in the working
# directory: mount a volume on /var/lib/ledger (the directory belongs to 65532, so a fresh named
# volume does too). With a read-only root file system and no volume, start-up fails loudly; SQLite's
# temporary files (large sorts) go to /tmp, so a read-only root wants a tmpfs there.
COPY --from=builder --chown=65532:65532 /out/var/lib/ledger /var/lib/ledger
ENV LEDGER_SQLITE_PATH=/var/lib/ledger/ledger.db
# The admin tool, for one-off tasks from the same image: `--entrypoint /usr/local/bin/ledger ... migrate`.
COPY --from=builder /out/bin/ledger /usr/local/bin/ledger
USER 65532:65532

# ---- ledger-api --------------------------------------------------------------------------------
FROM runtime AS ledger-api
COPY --from=builder /out/bin/ledger-api /out/bin/ledger-healthcheck /usr/local/bin/
# Every interface of the task: the ALB reaches it. On a non-loopback address ledger-api refuses to
# start without LEDGER_AUTH_* keys; that is intended, not a default to work around.
ENV LEDGER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# Readiness, not liveness: unhealthy while /health/ready fails (a store that does not answer,
# dead letters waiting for an operator, and where this process projects, a projection further
# behind than LEDGER_READY_LAG_MAX_MS).
# Where unhealthy means restarted (ECS replaces the task), a dead letter would restart every task
# and restarting fixes none of these; LEDGER_HEALTHCHECK_URL=http://127.0.0.1:8080/health/live
# then makes it a liveness check. The check bounds itself to 2 s; the timeout leaves room.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ledger-healthcheck"]
ENTRYPOINT ["/usr/local/bin/ledger-api"]

# ---- ledger-projector --------------------------------------------------------------------------
FROM runtime AS ledger-projector
COPY --from=builder /out/bin/ledger-projector /usr/local/bin/
# No health check, on purpose: ledger-projector serves no HTTP and has nothing a probe could ask.
# A dead process ends the container (it is PID 1) and ECS replaces it; a stand-by process that
# does not hold the projector lease is healthy, not stuck; and a projector that runs but falls
# behind shows in the projection-lag alarm (`ledger.projection.lag`, which it exports), and an open
# dead letter in ledger-api's readiness. A check that only proves the process exists adds nothing.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/ledger-projector"]
