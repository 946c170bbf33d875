# One image for every app of the fleet; the command picks the app:
#   node dist/apps/coordinator/src/main.js | dist/apps/worker/src/main.js --pool cpu | ...
# Build: docker build -t fleet:0.1.0 .   (multi-stage: the build tools stay in the first stage)

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
COPY bench ./bench
COPY scripts ./scripts
RUN npx nest build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# Test files of the example pools run with python3 and node; add what your pools' runners need.
RUN apt-get update && apt-get install -y --no-install-recommends python3 tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production LOG_FORMAT=json CONFIG_DIR=/app/examples/config
WORKDIR /app
COPY --from=build /src/package.json /src/nest-cli.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/scripts ./scripts
COPY apps/dashboard/public ./apps/dashboard/public
COPY examples ./examples
# Non-root: a fixed uid that Kubernetes' runAsNonRoot can check.
RUN groupadd --gid 10001 fleet && useradd --uid 10001 --gid fleet --no-create-home --shell /usr/sbin/nologin fleet
USER 10001:10001
EXPOSE 8080 8081 8082 8083
# tini forwards SIGTERM, so a worker drains and the apps close cleanly when a pod stops.
ENTRYPOINT ["/usr/bin/tini", "--", "node"]
CMD ["dist/apps/coordinator/src/main.js"]
