# syntax=docker/dockerfile:1
# The hub's image: built with the same `npm ci && npm run build` that CI runs (the server compiled by tsc into dist/,
# the pages by Vite into web/dist/), then only the production dependencies (pruned after the postgres.js patch was
# applied by `npm ci`) and the built files are copied into a slim runtime image that runs as a non-root user.
#   docker build -t hutong .
#   docker compose up        (the hub and PostgreSQL: docker-compose.yml)

ARG NODE_VERSION=20.19

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# The sources first: `npm ci` runs `prepare` (npm run build), which needs them.
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
COPY web ./web
COPY bin ./bin
COPY docs ./docs
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HUTONG_HOST=0.0.0.0 \
    PORT=8080 \
    HUTONG_DATA_DIR=/var/lib/hutong/data \
    HUTONG_KEY_DIR=/var/lib/hutong/keys
WORKDIR /app
# No src/ in the image: bin/hutong.js runs the compiled hub in dist/.
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/web/dist ./web/dist
COPY --from=build --chown=root:root /app/migrations ./migrations
COPY --from=build --chown=root:root /app/bin ./bin
COPY --from=build --chown=root:root /app/docs/guides ./docs/guides
# The code is root's and read-only to the hub; its data and key directories belong to the unprivileged `node` user.
RUN mkdir -p /var/lib/hutong/data /var/lib/hutong/keys && chown -R node:node /var/lib/hutong && chmod -R 0700 /var/lib/hutong
USER node
VOLUME ["/var/lib/hutong"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=32", "--max-old-space-size=256", "bin/hutong.js"]
# A real deployment: nothing seeded, no demo helper. Run `migrate` once before rolling out several hubs if you like;
# `start` applies pending migrations itself (under an advisory lock).
CMD ["start"]
