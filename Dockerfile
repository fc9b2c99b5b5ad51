# pinbox daemon image. The repo lives in a volume; the API stays on the container's loopback
# unless you set api.host, and the swarm ports are published.
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
ENV PINBOX_HOME=/data
VOLUME /data
EXPOSE 4101 4102
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/pinbox.js"]
CMD ["daemon", "--init-if-missing"]
