# hestat on Debian 12. The same install script as the README and CI.
#   docker build -t hestat .
#   docker run --rm hestat            # runs the demo: encrypted statistics end to end
#   docker run --rm -v $PWD:/data hestat hestat-server compute /data/job.hst --out /data/result.hst
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" all && make install PREFIX=/opt/hestat

FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgmp10 libfftw3-double3 libsodium23 libxxhash0 libzstd1 libmicrohttpd12 \
      libcurl4 libjansson4 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/hestat hestat
COPY --from=build /opt/hestat /opt/hestat
ENV PATH=/opt/hestat/bin:$PATH LD_LIBRARY_PATH=/opt/hestat/lib
USER hestat
WORKDIR /var/lib/hestat
CMD ["hestat-demo"]
