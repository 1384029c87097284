# Fulcrum in a container: a multi-stage build (the Rust toolchain stays in
# the first stage), a small Debian runtime, a non-root user, a health check
# on /healthz. By default the container runs `fulcrum demo` (the gateway
# with a mock fleet, dashboard on :9090); mount a config and run
# `serve -c /etc/fulcrum/fulcrum.yaml` for real use:
#
#   docker build -t fulcrum .
#   docker run --rm -p 8080:8080 -p 9090:9090 fulcrum            # the demo
#   docker run --rm -p 8080:8080 -p 127.0.0.1:9090:9090 \
#     -v $PWD/fulcrum.yaml:/etc/fulcrum/fulcrum.yaml:ro fulcrum serve -c /etc/fulcrum/fulcrum.yaml
#
# The admin listener must bind 0.0.0.0 inside the container to be
# published; publish it on the host's loopback and set admin.token.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# The shipped profile: optimised, symbols split off (see Cargo.toml).
RUN cargo build --locked --profile dist -p fulcrum \
 && cp target/dist/fulcrum /fulcrum

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/fulcrum --create-home fulcrum
COPY --from=build /fulcrum /usr/local/bin/fulcrum
USER fulcrum
WORKDIR /var/lib/fulcrum
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/fulcrum"]
CMD ["demo", "--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9090"]
