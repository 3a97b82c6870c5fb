# Build stage: Rust + the C toolchain pieces the codecs need (nasm for rav1e/libjpeg-turbo SIMD,
# cmake for libjpeg-turbo and libheif, the AV1/HEVC libraries libheif is built against).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nasm cmake g++ pkg-config \
        libdav1d-dev libde265-dev libaom-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
COPY assets ./assets
COPY benches ./benches
COPY samples ./samples
COPY config ./config
RUN cargo build --release --locked --bin refract

# Runtime stage: a small Debian with a non-root user and a data volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libdav1d6 libde265-0 \
        libaom3 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data refract && mkdir -p /data && chown refract /data
COPY --from=build /src/target/release/refract /usr/local/bin/refract
COPY config/refract.toml /etc/refract/refract.toml
USER refract
WORKDIR /data
ENV REFRACT_LISTEN=0.0.0.0:8080 REFRACT_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/refract", "--config", "/etc/refract/refract.toml"]
