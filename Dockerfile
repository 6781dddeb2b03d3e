# syntax=docker/dockerfile:1
# Warren: AMQP 0-9-1 broker. Build:  docker build -t warren .
# Run:    docker run -p 5672:5672 -p 15672:15672 -p 15692:15692 -v warren-data:/data \
#           -e WARREN_DEFAULT_USER=app -e WARREN_DEFAULT_PASS=change-me warren
# (guest/guest only works from loopback, i.e. not from outside the container.)
# TLS: mount a certificate and key and add, e.g.,
#   -p 5671:5671 -v ./certs:/certs:ro -e WARREN_TLS_PORT=5671 \
#   -e WARREN_TLS_CERT=/certs/server.pem -e WARREN_TLS_KEY=/certs/server.key

# ---- build: compile TypeScript with the dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies + compiled output only ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The data directory must exist and belong to the unprivileged user before VOLUME
# so a fresh named volume inherits that ownership.
RUN mkdir -p /data && chown node:node /data
USER node
ENV WARREN_DATA_DIR=/data WARREN_HOST=0.0.0.0
# AMQP; AMQP over TLS (when WARREN_TLS_PORT=5671 and a certificate are given); management API
# and dashboard; Prometheus metrics
EXPOSE 5672 5671 15672 15692
VOLUME /data
# Warren handles SIGTERM itself (clean close of every connection, then the store),
# so node can run as PID 1 without an init wrapper.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["node", "-e", "require('node:net').connect(Number(process.env.WARREN_PORT || 5672), '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"]
CMD ["node", "--single-threaded-gc", "--initial-old-space-size=128", "dist/cli/main.js", "start"]
