# Stand-in for quay.io/coreos/etcd:v3.5: Debian's etcd 3.4 with etcdctl, on the PATH as in
# the official image; the compose file gives the command line.
FROM tasks-standin/debian:bookworm
# Not pinned: a stand-in takes whatever version bookworm's archive has today.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=apt_sources,target=/etc/apt/sources.list \
    apt-get update \
    && apt-get install -y --no-install-recommends etcd-server etcd-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 2379 2380
CMD ["etcd"]
