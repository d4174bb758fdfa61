// Saving 10,000 memories five ways, side by side in one run (the seed's table), twice:
// as new records, and overwriting 10,000 existing ones. Every strategy starts from the
// same state (the bench's rows deleted or freshly written, then VACUUM), so none inherits
// the dead rows an earlier strategy left.
//   one_per_record   10,000 upserts, each awaited before the next
//   chunks_of_100    100 statements of 100 rows, each awaited before the next
//   single_statement one unnest() upsert of 10,000 rows
//   pipelined_chunks 100 statements of 100 rows submitted in one tick (one round trip)
//   coalesced        10,000 single-item save_memories calls in one tick, through the store
// Also the seed's lookup table: N users prefetched naive (coalesce off) vs batched.
// Prints JSON lines: medians over repeats, in milliseconds.
//   save_strategies DATABASE_URL [--quick]
#include "dataloader/store/memory_store.hpp"
#include "dataloader/store/migrations.hpp"
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
#include <map>

namespace asio = boost::asio;
namespace pg = dataloader::pg;
namespace store = dataloader::store;
using bench::clock_type;
using bench::countdown;
using bench::median;
using bench::ms_since;

namespace {

const pg::statement upsert{"bench_upsert",
    "INSERT INTO memories (user_id, category, key, value, created_at, updated_at) "
    "SELECT u, c, k, v, clock_timestamp(), clock_timestamp() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(u, c, k, v) "
    "ON CONFLICT (user_id, category, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"};
const pg::statement cleanup{"bench_cleanup", "DELETE FROM memories WHERE user_id LIKE 'savebench%'"};

struct rows {
  std::vector<std::string> u, c, k, v;
};
rows make_rows(std::size_t from, std::size_t to, int round) {
  rows r;
  for (std::size_t i = from; i < to; ++i) {
    r.u.push_back("savebench" + std::to_string(i % 1000));
    r.c.push_back("FACT");
    r.k.push_back("key" + std::to_string(i));
    r.v.push_back("value " + std::to_string(i) + " round " + std::to_string(round));
  }
  return r;
}
pg::params params_of(const rows& r) { return pg::params(r.u, r.c, r.k, r.v); }


asio::awaitable<void> must(pg::connection_pool& pool, const pg::statement& st, pg::params p) {
  dataloader::diagnostics d;
  auto [ec, r] = co_await pool.async_query(st, std::move(p), {}, d, asio::as_tuple(asio::use_awaitable));
  if (ec) throw std::runtime_error(st.name + ": " + d.message());
}

// VACUUM can be neither prepared nor run in a transaction: a plain blocking connection.
class vacuum_connection {
 public:
  explicit vacuum_connection(const std::string& url) : c_(PQconnectdb(url.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) throw std::runtime_error(std::string("vacuum connection: ") + PQerrorMessage(c_));
  }
  ~vacuum_connection() { PQfinish(c_); }
  vacuum_connection(const vacuum_connection&) = delete;
  vacuum_connection& operator=(const vacuum_connection&) = delete;
  void vacuum() {
    PGresult* r = PQexec(c_, "VACUUM memories");
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) throw std::runtime_error(std::string("VACUUM: ") + PQerrorMessage(c_));
  }

 private:
  PGconn* c_;
};

// The state every strategy starts from: no bench rows (new records), or all `total` of
// them written once (overwrites); then VACUUM.
asio::awaitable<void> reset(pg::connection_pool& pool, vacuum_connection& vac, bool overwrite, std::size_t total) {
  co_await must(pool, cleanup, {});
  if (overwrite) co_await must(pool, upsert, params_of(make_rows(0, total, -1)));
  vac.vacuum();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: save_strategies DATABASE_URL [--quick]\n");
    return 2;
  }
  const bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  const std::size_t total = quick ? 1000 : 10000;
  const int repeats = quick ? 1 : 5;
  asio::io_context io(1);
  pg::pool_params p;
  p.conninfo = argv[1];
  p.size = 2;
  pg::connection_pool pool(io.get_executor(), p);
  pool.start();
  vacuum_connection vac(argv[1]);
  std::exception_ptr error;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await store::async_migrate(pool, asio::use_awaitable);
    store::memory_store coalesced(pool);
    store::store_options off;
    off.coalesce = false;
    store::memory_store naive(pool, off);
    std::map<std::string, std::vector<double>> times[2];  // [0] new records, [1] overwrites
    auto ex = co_await asio::this_coro::executor;
    for (int round = 0; round < repeats; ++round)
      for (int overwrite = 0; overwrite < 2; ++overwrite) {
        auto& t = times[overwrite];
        co_await reset(pool, vac, overwrite, total);
        auto t0 = clock_type::now();
        for (std::size_t i = 0; i < total; ++i) co_await must(pool, upsert, params_of(make_rows(i, i + 1, round)));
        t["one_per_record"].push_back(ms_since(t0));

        co_await reset(pool, vac, overwrite, total);
        t0 = clock_type::now();
        for (std::size_t i = 0; i < total; i += 100) co_await must(pool, upsert, params_of(make_rows(i, i + 100, round)));
        t["chunks_of_100"].push_back(ms_since(t0));

        auto all = make_rows(0, total, round);
        co_await reset(pool, vac, overwrite, total);
        t0 = clock_type::now();
        co_await must(pool, upsert, params_of(all));
        t["single_statement"].push_back(ms_since(t0));

        std::vector<rows> chunks;
        for (std::size_t i = 0; i < total; i += 100) chunks.push_back(make_rows(i, i + 100, round));
        std::vector<dataloader::diagnostics> ds(chunks.size());
        countdown piped(ex, chunks.size(), "a pipelined chunk failed");
        co_await reset(pool, vac, overwrite, total);
        t0 = clock_type::now();
        for (std::size_t c = 0; c < chunks.size(); ++c)
          pool.async_query(upsert, params_of(chunks[c]), {}, ds[c], [&](dataloader::error_code ec, pg::result) { piped.done(!ec); });
        co_await piped.wait();
        t["pipelined_chunks"].push_back(ms_since(t0));

        std::vector<store::memory_input> items;
        for (std::size_t i = 0; i < total; ++i) items.push_back({all.u[i], all.c[i], all.k[i], all.v[i] + " coalesced"});
        countdown saves(ex, total, "a save failed");
        co_await reset(pool, vac, overwrite, total);
        t0 = clock_type::now();
        for (auto& item : items) {
          std::vector<store::memory_input> one{item};
          coalesced.async_save_memories(std::move(one), [&](dataloader::error_code ec, std::int64_t) { saves.done(!ec); });
        }
        co_await saves.wait();
        t["coalesced"].push_back(ms_since(t0));
      }
    for (int overwrite = 0; overwrite < 2; ++overwrite) {
      std::printf("{\"kind\": \"%s\", \"records\": %zu, \"repeats\": %d", overwrite ? "saves_overwrite" : "saves", total, repeats);
      for (auto& [name, v] : times[overwrite]) std::printf(", \"%s_ms\": %.3f", name.c_str(), median(v));
      std::printf("}\n");
    }

    // The seed's lookup table: N users' prefetch, naive vs batched, statements and time.
    for (int n : {1, 2, 5, 10, 100}) {
      std::vector<double> tn, tb;
      std::uint64_t qn = 0, qb = 0;
      for (int round = 0; round < (quick ? 1 : 7); ++round) {
        for (auto* s : {&naive, &coalesced}) {
          const auto before = s->stats().queries;
          countdown c(ex, static_cast<std::size_t>(n), "a prefetch failed");
          const auto t0 = clock_type::now();
          for (int u = 0; u < n; ++u)
            s->async_prefetch("savebench" + std::to_string(u), 20,
                              [&](dataloader::error_code ec, store::prefetch_result) { c.done(!ec); });
          co_await c.wait();
          (s == &naive ? tn : tb).push_back(ms_since(t0));
          (s == &naive ? qn : qb) = s->stats().queries - before;
        }
      }
      std::printf("{\"kind\": \"prefetch\", \"users\": %d, \"naive_statements\": %llu, \"batched_statements\": %llu, "
                  "\"naive_ms\": %.3f, \"batched_ms\": %.3f}\n",
                  n, static_cast<unsigned long long>(qn), static_cast<unsigned long long>(qb), median(tn), median(tb));
    }
    co_await must(pool, cleanup, {});
    pool.close();
  }, [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) {
    try { std::rethrow_exception(error); } catch (const std::exception& e) { std::fprintf(stderr, "%s\n", e.what()); }
    return 1;
  }
  return 0;
}
