# Stand-in for haproxy:3.0-bookworm: Debian's HAProxy 2.6, reading its configuration where
# the official image does, in the foreground, with its stop signal.
FROM tasks-standin/debian:bookworm
# Not pinned: a stand-in takes whatever version bookworm's archive has today.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=apt_sources,target=/etc/apt/sources.list \
    apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/etc/haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
