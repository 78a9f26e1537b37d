# hestat on Debian 12: the same install script as the README and CI.
#   docker build -t hestat .
#   docker run --rm hestat                       # hestat-server serve on 0.0.0.0:8750
#   docker compose up                            # a server and a client container
# Build stage: toolchain + -dev packages from scripts/install-deps.sh.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" all && make install PREFIX=/opt/hestat

# Runtime stage: shared libraries only, a non-root user for the server.
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgmp10 libfftw3-double3 libsodium23 libxxhash0 libzstd1 libmicrohttpd12 \
      libcurl4 libjansson4 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/hestat hestat
COPY --from=build /opt/hestat /opt/hestat
COPY scripts/demo.sh /opt/hestat/share/demo.sh
ENV PATH=/opt/hestat/bin:$PATH LD_LIBRARY_PATH=/opt/hestat/lib
USER hestat
WORKDIR /var/lib/hestat
EXPOSE 8750
# Listening beyond loopback (inside the container network): give it a token.
CMD ["hestat-server", "serve", "--listen", "0.0.0.0:8750", "--spool", "/var/lib/hestat/spool"]
