# Stand-in for redis:7.4-bookworm: Debian's Redis 7.0, data in /data, protected mode off as
# in the official image (it is reachable on the project's network only).
FROM tasks-standin/debian:bookworm
# Not pinned: a stand-in takes whatever version bookworm's archive has today.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=apt_sources,target=/etc/apt/sources.list \
    apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o redis -g redis /data
COPY --chmod=0755 redis-entrypoint.sh /usr/local/bin/
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["redis-entrypoint.sh"]
CMD ["redis-server"]
