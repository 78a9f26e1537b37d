# hestat on Debian 12: the same install script as the README and CI.
#   docker build -t hestat .
#   docker run --rm hestat hestat-info
#   docker run --rm hestat                 # hestat-server serve on 0.0.0.0:8750
#   make docker-test                       # the compose study (compose.yaml), checked
# Build stage: toolchain + -dev packages from scripts/install-deps.sh.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" all && install -d /opt/hestat/bin \
    && install -s -m 755 build/bin/hestat-* /opt/hestat/bin/

# Runtime stage: the programs (libhestat linked in) and the shared libraries
# they load, a non-root user (uid 10001) owning the spool and the study's
# volumes, so named volumes mounted there start out writable by it.
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgmp10 libfftw3-double3 libsodium23 libxxhash0 libzstd1 libmicrohttpd12 \
      libcurl4 libjansson4 libgomp1 libcsv3 libgsl27 libgslcblas0 zlib1g libb2-1 libssl3 libjs-chart.js \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/hestat --create-home hestat \
    && install -d -o hestat -g hestat -m 0700 /var/lib/hestat/spool /analyst \
    && install -d -o hestat -g hestat -m 0755 /public /control /out
COPY --from=build /opt/hestat/bin /opt/hestat/bin
# Every library the programs load is here (a missing one fails the build, not a container).
RUN for b in /opt/hestat/bin/*; do \
      if ldd "$b" | grep -q 'not found'; then echo "$b:"; ldd "$b" | grep 'not found'; exit 1; fi; \
    done
COPY docker/compose-step.sh /opt/hestat/share/hestat/compose-step.sh
ENV PATH=/opt/hestat/bin:$PATH
USER hestat
WORKDIR /var/lib/hestat
EXPOSE 8750
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
    CMD ["hestat-client", "health", "--server", "http://127.0.0.1:8750"]
# Listening beyond loopback (inside the container network): give it a token
# (--token-file) as compose.yaml does.
CMD ["hestat-server", "serve", "--listen", "0.0.0.0:8750", "--spool", "/var/lib/hestat/spool"]
