# syntax=docker/dockerfile:1
# The infergate image: one static musl binary on distroless/static (CA
# certificates, tzdata and a nonroot user, no shell). Built by
# .github/workflows/release.yml for linux/amd64 and linux/arm64:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg INFERGATE_GIT_COMMIT="$(git rev-parse HEAD)" -t infergate .
#
# The build stage runs on the builder's own platform and cross-compiles for
# the image's with cargo-zigbuild (zig is the C compiler and linker for
# ring's C code), so a multi-platform build never compiles Rust under QEMU;
# the final stage only copies, which needs no emulation either.
# Base images are named by tag: pin them by digest (`@sha256:...`) where
# reproducible images matter more than picking up security fixes.

FROM --platform=$BUILDPLATFORM rust:1.95-slim-bookworm AS build
ARG TARGETARCH
# The context has no .git (.dockerignore): the commit comes from the builder.
ARG INFERGATE_GIT_COMMIT=""
ARG INFERGATE_GIT_DATE=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/zig \
 && /opt/zig/bin/pip install --no-cache-dir ziglang==0.17.1 cargo-zigbuild==0.24.1
WORKDIR /src
COPY . .
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported platform: $TARGETARCH (amd64 and arm64 are built)" >&2; exit 1 ;; \
    esac \
 && rustup target add "$target" \
 && INFERGATE_GIT_COMMIT="$INFERGATE_GIT_COMMIT" INFERGATE_GIT_DATE="$INFERGATE_GIT_DATE" \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo PATH="/opt/zig/bin:$PATH" \
    cargo zigbuild --locked --release --target "$target" \
 && cp "target/$target/release/infergate" /infergate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /infergate /usr/local/bin/infergate
ENTRYPOINT ["infergate"]
