// N profile lookups three ways, side by side in one run against one server:
//   sequential  N statements, each awaited before the next (the N+1 pattern)
//   pipelined   N statements submitted in one tick: one flush, one round trip
//   any         one statement, WHERE user_id = ANY($1::text[])
//   libpq_floor N statements pipelined by a minimal blocking libpq program (no Asio, no pool)
// Prints one JSON object per (pattern, N) with the median over repeats, in milliseconds.
//   access_patterns DATABASE_URL [--quick]
#include "dataloader/pg/connection_pool.hpp"
#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace pg = dataloader::pg;
using bench::clock_type;
using bench::median;
using bench::ms_since;

namespace {

const pg::statement setup_table{"bench_setup",
    "CREATE TABLE IF NOT EXISTS profiles (user_id text PRIMARY KEY, profile text NOT NULL, "
    "updated_at timestamptz NOT NULL DEFAULT now())"};
const pg::statement seed{"bench_seed",
    "INSERT INTO profiles (user_id, profile) SELECT 'bench' || g, 'profile of bench' || g "
    "FROM generate_series(1, 10000) g ON CONFLICT (user_id) DO NOTHING"};
const pg::statement get_one{"bench_get_profile", "SELECT user_id, profile FROM profiles WHERE user_id = $1::text"};
const pg::statement get_any{"bench_get_profiles", "SELECT user_id, profile FROM profiles WHERE user_id = ANY($1::text[])"};

std::vector<std::string> keys(int n, int round) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("bench" + std::to_string(1 + (round * 7919 + i * 13) % 10000));
  return out;
}

asio::awaitable<double> sequential(pg::connection_pool& pool, const std::vector<std::string>& ks) {
  dataloader::diagnostics d;
  const auto t0 = clock_type::now();
  for (const auto& k : ks) {
    auto [ec, r] = co_await pool.async_query(get_one, pg::params(k), {}, d, asio::as_tuple(asio::use_awaitable));
    if (ec || r.rows() != 1) throw std::runtime_error("sequential lookup failed: " + d.message());
  }
  co_return ms_since(t0);
}

asio::awaitable<double> pipelined(pg::connection_pool& pool, const std::vector<std::string>& ks) {
  bench::countdown done(co_await asio::this_coro::executor, ks.size(), "pipelined lookup failed");
  std::vector<dataloader::diagnostics> ds(ks.size());
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < ks.size(); ++i)
    pool.async_query(get_one, pg::params(ks[i]), {}, ds[i], [&](dataloader::error_code ec, pg::result r) {
      done.done(!ec && r.rows() == 1);
    });
  co_await done.wait();
  co_return ms_since(t0);
}

asio::awaitable<double> any(pg::connection_pool& pool, const std::vector<std::string>& ks) {
  dataloader::diagnostics d;
  const auto t0 = clock_type::now();
  auto [ec, r] = co_await pool.async_query(get_any, pg::params(ks), {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec || r.rows() != ks.size()) throw std::runtime_error("= ANY lookup failed: " + d.message());
  co_return ms_since(t0);
}

// The floor: plain blocking libpq in pipeline mode, statement already prepared.
double libpq_floor(PGconn* c, const std::vector<std::string>& ks) {
  const auto t0 = clock_type::now();
  for (const auto& k : ks) {
    const char* v = k.c_str();
    PQsendQueryPrepared(c, "floor", 1, &v, nullptr, nullptr, 0);
  }
  PQpipelineSync(c);
  std::size_t got = 0;
  for (;;) {
    PGresult* r = PQgetResult(c);
    if (!r) continue;
    const auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) got += PQntuples(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) break;
  }
  if (got != ks.size()) throw std::runtime_error("libpq floor lookup failed");
  return ms_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: access_patterns DATABASE_URL [--quick]\n");
    return 2;
  }
  const bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  const std::string url = argv[1];
  PGconn* raw = PQconnectdb(url.c_str());
  if (PQstatus(raw) != CONNECTION_OK) {
    std::fprintf(stderr, "connect: %s", PQerrorMessage(raw));
    return 1;
  }
  asio::io_context io;
  pg::pool_params p;
  p.conninfo = url;
  p.size = 2;
  pg::connection_pool pool(io.get_executor(), p);
  pool.start();
  std::exception_ptr error;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    dataloader::diagnostics d;
    co_await pool.async_query(setup_table, {}, {}, d, asio::use_awaitable);
    co_await pool.async_query(seed, {}, {}, d, asio::use_awaitable);
    PQclear(PQprepare(raw, "floor", get_one.sql.c_str(), 1, nullptr));
    PQenterPipelineMode(raw);
    for (int n : {1, 10, 100, 1000}) {
      const int repeats = quick ? 3 : (n >= 1000 ? 7 : 21);
      std::vector<double> seq, pip, an, flo;
      for (int r = 0; r < repeats; ++r) {  // interleaved: the machine's noise hits all alike
        const auto ks = keys(n, r);
        seq.push_back(co_await sequential(pool, ks));
        pip.push_back(co_await pipelined(pool, ks));
        an.push_back(co_await any(pool, ks));
        flo.push_back(libpq_floor(raw, ks));
      }
      std::printf("{\"n\": %d, \"repeats\": %d, \"sequential_ms\": %.4f, \"pipelined_ms\": %.4f, "
                  "\"any_ms\": %.4f, \"libpq_floor_ms\": %.4f}\n",
                  n, repeats, median(seq), median(pip), median(an), median(flo));
      std::fflush(stdout);
    }
    pool.close();
  }, [&](std::exception_ptr e) { error = e; });
  io.run();
  PQfinish(raw);
  if (error) {
    try { std::rethrow_exception(error); } catch (const std::exception& e) { std::fprintf(stderr, "%s\n", e.what()); }
    return 1;
  }
  return 0;
}
