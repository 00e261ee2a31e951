# Stand-in for postgres:16-bookworm: Debian's PostgreSQL 15 with an entrypoint that honours
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and POSTGRES_HOST_AUTH_METHOD on an empty
# data directory, as the official image does.
FROM tasks-standin/debian:bookworm
# No "main" cluster from the package's postinst: the entrypoint creates one in PGDATA.
# Not pinned: a stand-in takes whatever version bookworm's archive has today.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=apt_sources,target=/etc/apt/sources.list \
    mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY --chmod=0755 postgres-entrypoint.sh /usr/local/bin/
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
