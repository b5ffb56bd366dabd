# Multi-stage build: compile in the full Rust image, run in a slim Debian image as a
# non-root user. Configuration is baked in; FRONTDESK__* variables override it.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY entity entity
COPY migration migration
COPY src src
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin frontdesk

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home frontdesk
WORKDIR /app
COPY --from=build /src/target/release/frontdesk /usr/local/bin/frontdesk
COPY config config
COPY templates templates
RUN mkdir -p /app/data && chown -R frontdesk:frontdesk /app/data
USER frontdesk
ENV FRONTDESK_ENV=production \
    FRONTDESK__SERVER__HOST=0.0.0.0 \
    FRONTDESK__SERVER__PORT=8080
EXPOSE 8080
VOLUME ["/app/data"]
ENTRYPOINT ["frontdesk"]
CMD ["serve"]
