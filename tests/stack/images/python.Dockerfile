# Stand-in for python:3.12-slim-bookworm: Debian's Python 3.11 in a venv at /usr/local, so
# /usr/local/bin/python and pip are where the official image has them.
FROM tasks-standin/debian:bookworm
# Not pinned: a stand-in takes whatever version bookworm's archive has today.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=apt_sources,target=/etc/apt/sources.list \
    apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local
ENV LANG=C.UTF-8
CMD ["python3"]
