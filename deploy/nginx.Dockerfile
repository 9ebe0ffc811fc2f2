# nginx for deploy/compose.yaml, on the same Debian base as the server image, with deploy/nginx.conf.
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY nginx.conf /etc/mriscan/nginx.conf
EXPOSE 8080
STOPSIGNAL SIGQUIT
# Workers run as www-data, which owns nginx's temporary folders (request bodies are buffered there).
CMD ["nginx", "-c", "/etc/mriscan/nginx.conf", "-g", "daemon off; user www-data;"]
