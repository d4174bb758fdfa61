// The load of bench/cache.py: prefetch of users chosen by a Zipf law with a share of
// profile writes, over keep-alive connections, and every read checked against the writes
// this run made. Written here rather than as a wrk script because
//  - it checks every read: a read sent after a write of its user was acknowledged must
//    return that write or a newer one (a wrk script cannot tell which request an answer
//    belongs to);
//  - it takes less of the cores it shares with the service and PostgreSQL than wrk with
//    a Lua script (its CPU time per request is in cache.py's output).
// With --probe-port (a second instance B on the same database), probe users are written
// through A and through B and read through A: after A's own write at once; after B's, at
// once with B's Dataloader-LSN token, and without a token within the time the invalidation
// takes to reach A (polled every 0.5 ms, reported as the notification's latency).
//
//   zipf_load --port A [--probe-port B] [--host 127.0.0.1] [--users 100000] [--zipf-s 1.0]
//             [--write-percent 5] [--connections 64] [--seconds 10] [--warmup-seconds 0]
//             [--probes 2]
//
// Prints one JSON object. Exits 1 when a read was stale, an answer failed or nothing was
// read; 2 on a bad command line.
#include "http/load_checks.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  unsigned short probe_port = 0;  // 0: no probes
  std::size_t users = 100000;
  double zipf_s = 1.0;
  int write_percent = 5;
  int connections = 64;
  double seconds = 10;
  double warmup_seconds = 0;
  int probes = 2;
};

std::optional<options> parse_options(int argc, char** argv) {
  std::map<std::string, std::string> given;
  for (int i = 1; i + 1 < argc; i += 2) given[argv[i]] = argv[i + 1];
  if (argc % 2 != 1) return std::nullopt;
  options o;
  try {
    for (const auto& [name, value] : given) {
      if (name == "--host") o.host = value;
      else if (name == "--port") o.port = static_cast<unsigned short>(std::stoul(value));
      else if (name == "--probe-port") o.probe_port = static_cast<unsigned short>(std::stoul(value));
      else if (name == "--users") o.users = std::stoul(value);
      else if (name == "--zipf-s") o.zipf_s = std::stod(value);
      else if (name == "--write-percent") o.write_percent = std::stoi(value);
      else if (name == "--connections") o.connections = std::stoi(value);
      else if (name == "--seconds") o.seconds = std::stod(value);
      else if (name == "--warmup-seconds") o.warmup_seconds = std::stod(value);
      else if (name == "--probes") o.probes = std::stoi(value);
      else return std::nullopt;
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (o.port == 0 || o.users == 0 || o.write_percent < 0 || o.write_percent > 100 || o.connections < 1 ||
      o.seconds <= 0 || o.warmup_seconds < 0 || o.probes < 0)
    return std::nullopt;
  return o;
}

struct reply {
  int status;
  std::string_view body;
  std::string_view lsn;
};

// One keep-alive connection, one request at a time. A reply's views are valid until the
// next exchange.
class connection {
 public:
  explicit connection(asio::any_io_executor ex) : socket_(std::move(ex)) {}

  asio::awaitable<error_code> connect(tcp::endpoint to) {
    error_code ignored;
    socket_.close(ignored);
    auto [ec] = co_await socket_.async_connect(to, use_tuple);
    if (!ec) socket_.set_option(tcp::no_delay(true), ec);
    co_return ec;
  }

  asio::awaitable<std::optional<reply>> exchange(std::string_view request, error_code& ec) {
    auto [write_ec, written] = co_await asio::async_write(socket_, asio::buffer(request), use_tuple);
    (void)written;
    if (write_ec) {
      ec = write_ec;
      co_return std::nullopt;
    }
    used_ = 0;
    std::size_t body_begin = 0;
    std::optional<reply_head> head;
    const char* head_parsed_in = nullptr;
    for (;;) {
      if (!head) {
        const std::string_view have(buf_.data(), used_);
        if (const auto end = have.find("\r\n\r\n"); end != std::string_view::npos) {
          head = bench::load::parse_reply_head(have.substr(0, end));
          if (!head) {
            ec = make_error_code(boost::system::errc::protocol_error);
            co_return std::nullopt;
          }
          body_begin = end + 4;
          head_parsed_in = buf_.data();
          if (buf_.size() < body_begin + head->content_length) buf_.resize(body_begin + head->content_length);
        }
      }
      if (head && used_ >= body_begin + head->content_length) break;
      if (used_ == buf_.size()) buf_.resize(buf_.size() * 2);
      auto [read_ec, n] = co_await socket_.async_read_some(asio::buffer(buf_.data() + used_, buf_.size() - used_), use_tuple);
      if (read_ec) {
        ec = read_ec;
        co_return std::nullopt;
      }
      used_ += n;
    }
    // The buffer no longer moves; a resize after the head was parsed moved its LSN view.
    const std::string_view all(buf_.data(), used_);
    if (head_parsed_in != buf_.data()) head = bench::load::parse_reply_head(all.substr(0, body_begin - 4));
    co_return reply{head->status, all.substr(body_begin, head->content_length), head->lsn};
  }

 private:
  using reply_head = bench::load::reply_head;
  tcp::socket socket_;
  std::vector<char> buf_ = std::vector<char>(64 * 1024);
  std::size_t used_ = 0;
};

// Per user: the newest version acknowledged this run, and whether a write is in flight. At
// most one write per user is in flight, so its versions commit in the order they are
// acknowledged. A write that failed may still commit later: its user is not written again.
struct user_book {
  std::uint64_t acknowledged = 0;
  bool writing = false;
  bool poisoned = false;
};

struct counts {
  std::uint64_t reads = 0, writes = 0, reads_after_a_write = 0, stale = 0, failed = 0;
  std::vector<std::uint32_t> latency_us;
  std::uint64_t probe_reads = 0, probe_stale = 0, token_reads = 0, token_stale = 0, unconverged = 0;
  std::vector<double> notification_ms;
  // By status: 0 for no answer (transport), 200 for an answer without a readable profile.
  std::map<int, std::uint64_t> failed_statuses;
};

struct run_state {
  explicit run_state(const options& o)
      : opt(o), sampler(o.users, o.zipf_s), rng(std::random_device{}()), books(o.users + 1) {
    run = std::to_string(std::uniform_int_distribution<std::uint64_t>(1, 999'999'999)(rng));
  }
  options opt;
  bench::load::zipf_sampler sampler;
  std::mt19937_64 rng;
  std::vector<user_book> books;  // by rank; 0 unused
  std::string run;               // tells this run's written values from earlier runs'
  std::uint64_t next_version = 0;
  bool counting = false, stopping = false;
  clock_type::time_point window_end = clock_type::time_point::max();
  counts c;

  bool counted(clock_type::time_point done) const { return counting && done <= window_end; }
  void failed(clock_type::time_point done, const std::optional<reply>& r) {
    if (!counted(done)) return;
    ++c.failed;
    ++c.failed_statuses[r ? r->status : 0];
  }
};

std::string put_profile(std::string_view user, std::string_view value) {
  const std::string body = "{\"profile\":\"" + std::string(value) + "\"}";
  return "PUT /v1/users/" + std::string(user) + "/profile HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string get_prefetch(std::string_view user, std::string_view min_lsn = {}) {
  std::string r = "GET /v1/users/" + std::string(user) + "/prefetch HTTP/1.1\r\nHost: load\r\n";
  if (!min_lsn.empty()) r += "Dataloader-Min-LSN: " + std::string(min_lsn) + "\r\n";
  return r + "\r\n";
}

// One connection of the Zipf mix.
asio::awaitable<void> drive(run_state& st, tcp::endpoint to) {
  connection conn(co_await asio::this_coro::executor);
  if (co_await conn.connect(to)) {
    st.failed(clock_type::now(), std::nullopt);
    co_return;
  }
  std::string user;
  while (!st.stopping) {
    std::size_t rank = st.sampler(st.rng);
    bool write = std::uniform_int_distribution<int>(1, 100)(st.rng) <= st.opt.write_percent;
    // A write never overlaps another of its user: it goes to another user drawn alike.
    for (int tries = 0; write && (st.books[rank].writing || st.books[rank].poisoned); ++tries) {
      if (tries == 16) write = false;
      else rank = st.sampler(st.rng);
    }
    user_book& book = st.books[rank];
    user = "user" + std::to_string(rank);
    const std::uint64_t acknowledged = book.acknowledged;
    std::uint64_t version = 0;
    std::string request;
    if (write) {
      version = ++st.next_version;
      book.writing = true;
      request = put_profile(user, st.run + "-" + std::to_string(version));
    } else {
      request = get_prefetch(user);
    }
    const auto sent = clock_type::now();
    error_code ec;
    const auto r = co_await conn.exchange(request, ec);
    const auto done = clock_type::now();
    const bool ok = r && r->status == 200;
    if (write) {
      book.writing = false;
      if (ok) book.acknowledged = std::max(book.acknowledged, version);
      else book.poisoned = true;
    }
    if (!ok) {
      st.failed(done, r);
      if (r) continue;
      ec = co_await conn.connect(to);
      if (ec) co_return;
      continue;
    }
    if (!st.counted(done)) continue;
    st.c.latency_us.push_back(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(done - sent).count()));
    if (write) {
      ++st.c.writes;
      continue;
    }
    ++st.c.reads;
    if (acknowledged) ++st.c.reads_after_a_write;
    const auto profile = bench::load::top_level_member(r->body, "profile");
    if (!profile) st.failed(done, r);
    else if (bench::load::stale(*profile, st.run, acknowledged)) ++st.c.stale;
  }
}

// Probe users written through A and through B and read through A (see the file's head).
asio::awaitable<void> probe(run_state& st, tcp::endpoint a, tcp::endpoint b, int id) {
  const auto ex = co_await asio::this_coro::executor;
  connection to_a(ex), to_b(ex);
  const error_code a_failed = co_await to_a.connect(a);
  const error_code b_failed = co_await to_b.connect(b);
  if (a_failed || b_failed) {
    st.failed(clock_type::now(), std::nullopt);
    co_return;
  }
  asio::steady_timer pause(ex);
  error_code ec;
  // Reads `user` through A: whether it answered, and the version it holds (0: not this run's).
  auto read = [&](const std::string& user, std::string_view min_lsn) -> asio::awaitable<std::optional<std::uint64_t>> {
    const auto r = co_await to_a.exchange(get_prefetch(user, min_lsn), ec);
    const auto profile = r && r->status == 200 ? bench::load::top_level_member(r->body, "profile") : std::nullopt;
    if (!profile) {
      st.failed(clock_type::now(), r);
      co_return std::nullopt;
    }
    co_return bench::load::version_read(*profile, st.run);
  };
  const auto check = [&](std::uint64_t got, std::uint64_t acknowledged, std::uint64_t& reads, std::uint64_t& stale) {
    if (!st.counted(clock_type::now())) return;
    ++reads;
    if (got < acknowledged) ++stale;
  };
  for (std::uint64_t round = 0; !st.stopping; ++round) {
    const std::string user = "zipf-probe-" + st.run + "-" + std::to_string(id) + "-" + std::to_string(round % 5);
    // A's own write: A's next read shows it.
    const std::uint64_t mine = ++st.next_version;
    auto r = co_await to_a.exchange(put_profile(user, st.run + "-" + std::to_string(mine)), ec);
    if (!r || r->status != 200) {
      st.failed(clock_type::now(), r);
      co_return;  // a failed write may still commit: this probe's ordering is lost
    }
    const auto own = co_await read(user, {});
    if (!own) co_return;
    check(*own, mine, st.c.probe_reads, st.c.probe_stale);
    // B's write: A shows it with B's token at once, and without one once notified.
    const std::uint64_t theirs = ++st.next_version;
    r = co_await to_b.exchange(put_profile(user, st.run + "-" + std::to_string(theirs)), ec);
    if (!r || r->status != 200) {
      st.failed(clock_type::now(), r);
      co_return;
    }
    const auto acknowledged_at = clock_type::now();
    if (round % 2 == 0) {
      const std::string lsn(r->lsn);
      const auto got = co_await read(user, lsn);
      if (!got) co_return;
      check(*got, theirs, st.c.token_reads, st.c.token_stale);
      continue;
    }
    for (;;) {
      const auto got = co_await read(user, {});
      if (!got) co_return;
      check(*got, mine, st.c.probe_reads, st.c.probe_stale);
      const auto waited = clock_type::now() - acknowledged_at;
      if (*got >= theirs) {
        if (st.counted(clock_type::now()))
          st.c.notification_ms.push_back(std::chrono::duration<double, std::milli>(waited).count());
        break;
      }
      if (waited > std::chrono::seconds(2) || st.stopping) {
        if (st.counted(clock_type::now())) ++st.c.unconverged;
        break;
      }
      // Polled, not spun: a busy loop would take CPU from the measured load.
      pause.expires_after(std::chrono::microseconds(500));
      co_await pause.async_wait(use_tuple);
    }
  }
}

// The p-th percentile of `v` divided by `scale`, as JSON: null when `v` is empty.
template <class T>
std::string percentile(std::vector<T> v, double p, double scale) {
  if (v.empty()) return "null";
  std::sort(v.begin(), v.end());
  const auto at = std::min(v.size() - 1, static_cast<std::size_t>(static_cast<double>(v.size()) * p / 100));
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(v[at]) / scale);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opt = parse_options(argc, argv);
  if (!opt) {
    std::fprintf(stderr,
                 "usage: zipf_load --port A [--probe-port B] [--host H] [--users N] [--zipf-s S] [--write-percent P]\n"
                 "                 [--connections C] [--seconds T] [--warmup-seconds W] [--probes K]\n");
    return 2;
  }
  run_state st(*opt);
  asio::io_context io(1);
  const auto address = asio::ip::make_address(opt->host);
  for (int i = 0; i < opt->connections; ++i) asio::co_spawn(io, drive(st, {address, opt->port}), asio::detached);
  if (opt->probe_port)
    for (int i = 0; i < opt->probes; ++i)
      asio::co_spawn(io, probe(st, {address, opt->port}, {address, opt->probe_port}, i), asio::detached);
  clock_type::time_point window_start;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    t.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opt->warmup_seconds)));
    co_await t.async_wait(use_tuple);
    window_start = clock_type::now();
    st.window_end = window_start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opt->seconds));
    st.counting = true;
    t.expires_at(st.window_end);
    co_await t.async_wait(use_tuple);
    st.stopping = true;
  }, asio::detached);
  io.run();

  const counts& c = st.c;
  const double seconds = std::chrono::duration<double>(st.window_end - window_start).count();
  const std::uint64_t requests = c.reads + c.writes;
  const std::uint64_t checked = c.reads + c.probe_reads + c.token_reads;
  const std::uint64_t stale = c.stale + c.probe_stale + c.token_stale;
  std::string failures;
  for (const auto& [status, n] : c.failed_statuses)
    failures += (failures.empty() ? "" : ", ") + ("\"" + std::to_string(status) + "\": " + std::to_string(n));
  std::printf(
      "{\"seconds\": %.3f, \"requests\": %llu, \"requests_per_s\": %.1f, \"reads\": %llu, \"writes\": %llu, "
      "\"p50_ms\": %s, \"p99_ms\": %s, \"checked_reads\": %llu, \"reads_after_a_write\": %llu, "
      "\"probe_reads\": %llu, \"token_reads\": %llu, \"stale\": %llu, \"failed\": %llu, \"failed_statuses\": {%s}, "
      "\"notifications_timed\": %zu, \"notification_ms_p50\": %s, \"notification_ms_p99\": %s, \"unconverged\": %llu}\n",
      seconds, static_cast<unsigned long long>(requests), static_cast<double>(requests) / seconds,
      static_cast<unsigned long long>(c.reads), static_cast<unsigned long long>(c.writes),
      percentile(c.latency_us, 50, 1000).c_str(), percentile(c.latency_us, 99, 1000).c_str(), static_cast<unsigned long long>(checked),
      static_cast<unsigned long long>(c.reads_after_a_write), static_cast<unsigned long long>(c.probe_reads),
      static_cast<unsigned long long>(c.token_reads), static_cast<unsigned long long>(stale),
      static_cast<unsigned long long>(c.failed), failures.c_str(), c.notification_ms.size(),
      percentile(c.notification_ms, 50, 1).c_str(), percentile(c.notification_ms, 99, 1).c_str(), static_cast<unsigned long long>(c.unconverged));
  return stale == 0 && c.failed == 0 && c.reads > 0 ? 0 : 1;
}
