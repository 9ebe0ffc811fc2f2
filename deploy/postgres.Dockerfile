# The demo PostgreSQL 15 for deploy/compose.yaml's `postgres` profile: Debian bookworm's own postgresql-15 on the
# same bookworm-slim base as the other images (deploy/up.sh can make that base with debootstrap, so no registry
# beyond Debian's is needed). docker.io/library/postgres:15 takes the same variables and volume and would do too.
#   docker build -f deploy/postgres.Dockerfile -t localhost/mriscan-postgres deploy
# What it is not: a production database; in production PostgreSQL is a managed service (deploy/README.md).
FROM docker.io/library/debian:bookworm-slim
# Debian's packaging would create a cluster at install time; the entrypoint makes one in the volume instead.
RUN mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown: sessions are ended and the data flushed, within compose's grace period.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
