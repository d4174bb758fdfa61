// dataloader-server: serve, migrate, seed-demo.
#include "options.hpp"
#include "seed.hpp"

#include "dataloader/http/server.hpp"
#include "dataloader/http/service.hpp"
#include "dataloader/store/memory_store.hpp"
#include "dataloader/store/migrations.hpp"
#include "dataloader/version.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

namespace asio = boost::asio;
using namespace dataloader;

namespace {

constexpr const char* version = "asio-dataloader " DATALOADER_VERSION;

int fatal(const std::string& message, int status = 1) {
  std::fprintf(stderr, "dataloader-server: %s\n", message.c_str());
  return status;
}

// A duration in milliseconds from the environment; tunable there only (tests use short ones).
std::chrono::milliseconds env_ms(const char* name, std::chrono::milliseconds fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::chrono::milliseconds(std::strtoll(v, nullptr, 10)) : fallback;
}

pg::pool_params pool_params_of(const cli::options& o) {
  pg::pool_params p;
  p.conninfo = *o.database_url;
  if (o.pool_size) p.size = o.pool_size;
  p.statement_timeout = env_ms("DATALOADER_STATEMENT_TIMEOUT_MS", p.statement_timeout);
  p.acquire_timeout = env_ms("DATALOADER_ACQUIRE_TIMEOUT_MS", p.acquire_timeout);
  p.slow_statement_threshold = o.slow_statement;
  // Names and sizes only: parameter values may be personal data.
  p.on_slow_statement = [](const pg::slow_statement& s) {
    std::fprintf(stderr, "dataloader-server: slow statement %.*s: %.1f ms, %zu key%s, %zu row%s, server %.*s\n",
                 static_cast<int>(s.name.size()), s.name.data(), static_cast<double>(s.elapsed.count()) / 1000.0,
                 s.keys, s.keys == 1 ? "" : "s", s.rows, s.rows == 1 ? "" : "s", static_cast<int>(s.server.size()),
                 s.server.data());
  };
  return p;
}

// Runs `body(pool)` on a one-thread event loop; the exit status is what it returns.
template <class Body>
int with_pool(const cli::options& o, Body body) {
  asio::io_context io(1);
  pg::connection_pool pool(io.get_executor(), pool_params_of(o));
  pool.start();
  int status = 1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    status = co_await body(pool);
    pool.close();
  }, [&](std::exception_ptr e) {
    if (e) {
      try { std::rethrow_exception(e); } catch (const std::exception& ex) { status = fatal(ex.what()); }
    }
  });
  io.run();
  return status;
}

int migrate(const cli::options& o) {
  return with_pool(o, [](pg::connection_pool& pool) -> asio::awaitable<int> {
    diagnostics d;
    auto [ec, applied] = co_await store::async_migrate(pool, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return fatal(describe(ec, d));
    std::fprintf(stderr, "dataloader-server: schema up to date (%d migration(s) applied)\n", applied);
    co_return 0;
  });
}

int seed(const cli::options& o) {
  // A bulk load's statements are slow by design (50,000 rows each): no slow-statement
  // lines between its progress updates.
  cli::options bulk = o;
  bulk.slow_statement = std::chrono::milliseconds(0);
  return with_pool(bulk, [&o](pg::connection_pool& pool) -> asio::awaitable<int> {
    diagnostics d;
    auto [ec, applied] = co_await store::async_migrate(pool, d, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return fatal(describe(ec, d));
    const auto started = std::chrono::steady_clock::now();
    auto r = co_await cli::seed_demo(pool, o.users, o.memories_per_user, [&](std::size_t done) {
      std::fprintf(stderr, "\rseed-demo: %zu / %zu users", done, o.users);
      std::fflush(stderr);
    });
    std::fprintf(stderr, "\n");
    if (!r) co_return fatal("seed-demo: " + r.message());
    std::fprintf(stderr, "seed-demo: %zu users with %zu memories each in %.1f s\n", o.users, o.memories_per_user,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    co_return 0;
  });
}

// Each connection is a descriptor: lifts the soft open-file limit to the hard one (the
// default soft limit, 1024, would refuse connections far below max_connections), and says
// so when even the hard limit is below what the connection limit needs.
void raise_file_limit(std::size_t max_connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  const rlim_t needed = max_connections + 256;  // + the pool, logs, the listener
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
    std::fprintf(stderr,
                 "dataloader-server: warning: the open-file limit (%llu) is below the %zu connections allowed; "
                 "connections past it wait in the listen queue (raise it: ulimit -n %llu)\n",
                 static_cast<unsigned long long>(limit.rlim_cur), max_connections,
                 static_cast<unsigned long long>(needed));
}

// Applies the migrations, retrying every second while they fail; the service reports the
// latest failure as its reason for not being ready, and the log has each new one once.
asio::awaitable<void> migrate_until_done(pg::connection_pool& pool, http::service& svc) {
  asio::steady_timer retry(co_await asio::this_coro::executor);
  std::string logged;
  for (;;) {
    diagnostics d;
    auto [ec, applied] = co_await store::async_migrate(pool, d, asio::as_tuple(asio::use_awaitable));
    if (!ec) {
      svc.set_ready();
      std::fprintf(stderr, "dataloader-server: schema up to date (%d migration(s) applied); ready\n", applied);
      co_return;
    }
    if (ec == errc::pool_closed) co_return;  // shutting down
    auto reason = "database migrations not applied yet: " + describe(ec, d);
    if (reason != logged) {
      std::fprintf(stderr, "dataloader-server: not ready: %s (retrying every second)\n", reason.c_str());
      logged = reason;
    }
    svc.set_not_ready(std::move(reason));
    retry.expires_after(std::chrono::seconds(1));
    co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

int serve(const cli::options& o) {
  error_code ec;
  auto address = asio::ip::make_address(o.listen_host, ec);
  if (ec) {
    if (o.listen_host != "localhost") return fatal("--listen: '" + o.listen_host + "' is not an IP address", 2);
    address = asio::ip::make_address("127.0.0.1");
  }
  if (!address.is_loopback() && !o.api_token)
    return fatal("refusing to listen on " + o.listen_host + " without --api-token: only loopback addresses may be served unauthenticated", 2);

  const std::size_t threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  loader_registry registry;  // outlives everything that reports to it
  // One event loop per thread: `io` (the pools, the store, the acceptor, and connections)
  // and threads - 1 loops of connections only. A request whose answer is cached runs on
  // its connection's thread alone; cross-thread wake-ups cost more than the work on a
  // shared loop (bench/cache.py). The connection loops are declared first so that they
  // are destroyed last: what `io` still holds at exit (an accept, a request waiting for
  // the store) may hold a connection's socket.
  std::vector<std::unique_ptr<asio::io_context>> connection_only_loops;
  for (std::size_t i = 1; i < threads; ++i) connection_only_loops.push_back(std::make_unique<asio::io_context>(1));
  asio::io_context io(1);
  std::vector<asio::io_context*> loops{&io};
  for (auto& loop : connection_only_loops) loops.push_back(loop.get());
  pg::connection_pool pool(io.get_executor(), pool_params_of(o));
  pool.start();
  // One pool per replica, as large as the primary's: reads move there.
  std::vector<std::unique_ptr<pg::connection_pool>> replica_pools;
  std::vector<pg::connection_pool*> replicas;
  for (const auto& url : o.replica_urls) {
    auto params = pool_params_of(o);
    params.conninfo = url;
    replica_pools.push_back(std::make_unique<pg::connection_pool>(io.get_executor(), params));
    replica_pools.back()->start();
    replicas.push_back(replica_pools.back().get());
  }

  store::store_options so;
  so.max_replica_lag = o.max_replica_lag;
  so.cache_entries = o.cache_entries;
  so.cache_ttl = o.cache_ttl;
  so.max_batch_size = o.max_batch_size;
  so.batch_window = o.batch_window;
  so.smart_batching = o.smart_batching;
  so.coalesce = o.coalesce;
  store::memory_store store(pool, replicas, so, &registry);
  http::service_config sc;
  sc.api_token = o.api_token;
  http::service svc(store, pool, registry, sc);
  http::server_config hc;
  hc.listen = asio::ip::tcp::endpoint(address, o.listen_port);
  hc.max_inflight = o.max_inflight;
  hc.access_log = o.access_log;
  hc.header_timeout = env_ms("DATALOADER_HEADER_TIMEOUT_MS", hc.header_timeout);
  hc.idle_timeout = env_ms("DATALOADER_IDLE_TIMEOUT_MS", hc.idle_timeout);
  hc.body_timeout = env_ms("DATALOADER_BODY_TIMEOUT_MS", hc.body_timeout);
  hc.write_timeout = env_ms("DATALOADER_WRITE_TIMEOUT_MS", hc.write_timeout);
  raise_file_limit(hc.max_connections);
  http::server srv(io, svc, hc, loops);
  // Serving starts at once; the data routes answer 503 until the schema is migrated, so
  // a database that is down (or refuses us) at start shows in /readyz with its reason.
  svc.set_not_ready("starting: database migrations not applied yet");
  std::string message;
  if (srv.start(message)) return fatal(message);
  asio::co_spawn(io, migrate_until_done(pool, svc), asio::detached);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](error_code e, int sig) {
    if (e) return;
    std::fprintf(stderr, "dataloader-server: signal %d, draining requests in flight\n", sig);
    srv.shutdown([&] {
      pool.close();
      for (auto& r : replica_pools) r->close();
      for (auto* loop : loops) loop->stop();
    });
  });

  const auto ep = srv.local_endpoint();
  std::fprintf(stderr,
               "dataloader-server %s listening on %s:%u (threads %zu, pool %zu, max batch %zu, batch window %lld us, "
               "smart batching %s, coalesce %s, replicas %zu, max in-flight %zu, auth %s)\n",
               DATALOADER_VERSION, ep.address().to_string().c_str(), ep.port(), threads, pool.config().size, o.max_batch_size,
               static_cast<long long>(o.batch_window.count()), o.smart_batching ? "on" : "off", o.coalesce ? "on" : "off", o.replica_urls.size(), o.max_inflight,
               o.api_token ? "bearer token" : "none (loopback only)");
  std::vector<std::thread> workers;
  for (auto& loop : connection_only_loops) {
    workers.emplace_back([&loop, guard = asio::make_work_guard(*loop)] { loop->run(); });
  }
  io.run();
  for (auto& t : workers) t.join();
  std::fprintf(stderr, "dataloader-server: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = cli::parse(args, [](const char* name) -> const char* { return std::getenv(name); });
  if (!parsed.opts) return fatal(parsed.error, 2);
  const auto& o = *parsed.opts;
  switch (o.cmd) {
    case cli::command::help:
      std::cout << cli::usage();
      return 0;
    case cli::command::version:
      std::cout << version << '\n';
      return 0;
    default:
      break;
  }
  if (!o.database_url) return fatal("no database: give --database-url URL or set DATABASE_URL", 2);
  if (std::string why; !pg::valid_conninfo(*o.database_url, why)) return fatal("--database-url: " + why, 2);
  for (const auto& url : o.replica_urls)
    if (std::string why; !pg::valid_conninfo(url, why)) return fatal("--replica-url: " + why, 2);
  try {
    switch (o.cmd) {
      case cli::command::serve: return serve(o);
      case cli::command::migrate: return migrate(o);
      case cli::command::seed_demo: return seed(o);
      default: return 2;
    }
  } catch (const std::exception& e) {
    return fatal(e.what());
  }
}
