# dataloader-server on Debian 12, built from this checkout.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libboost1.81-dev libpq-dev nlohmann-json3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DDATALOADER_TESTS=OFF -DDATALOADER_BENCH=OFF \
    && cmake --build /build -j "$(nproc)" --target dataloader-server

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system dataloader
COPY --from=build /build/dataloader-server /usr/local/bin/dataloader-server
USER dataloader
EXPOSE 8080
ENTRYPOINT ["dataloader-server"]
CMD ["serve"]
