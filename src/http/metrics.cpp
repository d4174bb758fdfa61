// /stats (JSON, SPEC.md) and /metrics (Prometheus text exposition format 0.0.4): the same
// figures, read from single-writer or relaxed atomic counters, so a scrape never blocks
// the hot paths.
#include "dataloader/http/service.hpp"
#include "dataloader/pg/lsn.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace dataloader::http {

using json = nlohmann::json;

namespace {

json histogram_json(const loader_stats& s) {
  json h = json::object();
  for (std::size_t i = 0; i < batch_histogram_buckets; ++i)
    if (s.batch_size_histogram[i] > 0) h[std::to_string(batch_histogram_upper_bound(i))] = s.batch_size_histogram[i];
  return h;
}

std::string le(double bound) {
  if (bound >= 1e300) return "+Inf";
  std::ostringstream o;
  o << bound;
  return o.str();
}

// One Prometheus histogram's series: cumulative buckets by upper bound (the last is +Inf),
// then _sum and _count (the count is the last, cumulative, bucket).
void histogram_series(std::ostream& o, const std::string& name, const std::string& labels,
                      const std::vector<std::string>& bounds, const std::vector<std::uint64_t>& counts, double sum) {
  const std::string with = labels.empty() ? "" : labels + ",";
  const std::string only = labels.empty() ? "" : "{" + labels + "}";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    o << name << "_bucket{" << with << "le=\"" << bounds[i] << "\"} " << cumulative << '\n';
  }
  o << name << "_sum" << only << ' ' << sum << '\n' << name << "_count" << only << ' ' << cumulative << '\n';
}

}  // namespace

std::string service::stats_json() const {
  const auto s = store_.stats();
  const auto db = pool_.stats();
  json loaders = json::object();
  for (const auto& [name, l] : s.loaders)
    loaders[name] = {{"loads", l.loads},           {"batches", l.batches},       {"keys", l.keys},
                     {"cache_hits", l.cache_hits}, {"dedup_hits", l.dedup_hits}, {"errors", l.errors},
                     {"cancelled", l.cancelled},   {"max_batch", l.max_batch},
                     {"batch_size_histogram", histogram_json(l)}};
  json rt = json::object();
  for (std::size_t i = 0; i < db.round_trip_histogram.size(); ++i)
    rt[i + 1 == db.round_trip_histogram.size() ? "+Inf" : std::to_string(pg::round_trip_bucket_bounds_us[i])] =
        db.round_trip_histogram[i];
  json statuses = json::object();
  for (unsigned st = 100; st < 600; ++st)
    if (auto n = counters_.responses(st)) statuses[std::to_string(st)] = n;
  json latency = json::object();
  for (std::size_t i = 0; i < latency_bucket_bounds_ms.size(); ++i) latency[le(latency_bucket_bounds_ms[i])] = counters_.bucket(i);
  json hosts = json::array();
  for (const auto& h : s.hosts)
    hosts.push_back({{"role", h.role},
                     {"connected", h.connected},
                     {"lag_ms", h.lag_ms},
                     {"replayed_lsn", pg::to_string(h.replayed)},
                     {"statements", h.statements},
                     {"reads", h.reads}});
  json out = {
      {"total_operations", s.total_operations},
      {"loads", s.loads},
      {"queries", s.queries},
      {"queries_saved", s.queries_saved()},
      {"efficiency_gain", std::round(s.efficiency_gain() * 1000.0) / 1000.0},
      {"batch_size", store_.options().max_batch_size},
      {"coalesce", store_.options().coalesce},
      {"loaders", loaders},
      {"db", {{"pool_size", db.pool_size},
              {"connected", db.connected},
              {"in_use", db.in_use},
              {"waiting", db.waiting},
              {"reconnects", db.reconnects},
              {"connect_failures", db.connect_failures},
              {"errors", db.errors},
              {"timeouts", db.timeouts},
              {"retries", db.retries},
              {"statements", db.statements},
              {"prepares", db.prepares},
              {"round_trips", db.round_trips},
              {"round_trip_latency_us", rt},
              {"hosts", hosts},
              {"slow_statements", s.slow_statements},
              {"reads_held_to_primary", s.reads_held_to_primary}}},
      {"cache", {{"enabled", s.cache.enabled},
                 {"serving", s.cache.serving},
                 {"entries", s.cache.entries},
                 {"bytes", s.cache.bytes},
                 {"hits", s.cache.hits},
                 {"misses", s.cache.misses},
                 {"hit_rate", s.cache.hits + s.cache.misses == 0
                                  ? 0.0
                                  : std::round(1000.0 * static_cast<double>(s.cache.hits) /
                                               static_cast<double>(s.cache.hits + s.cache.misses)) / 1000.0},
                 {"invalidations", s.cache.invalidations},
                 {"resyncs", s.cache.resyncs},
                 {"notifications", s.cache.notifications},
                 {"stale_fills", s.cache.stale_fills}}},
      {"http", {{"requests", counters_.requests()},
                {"in_flight", counters_.in_flight()},
                {"connections", counters_.connections()},
                {"rejected_connections", counters_.rejected_connections()},
                {"timed_out_connections", counters_.timed_out_connections()},
                {"responses_by_status", statuses},
                {"latency_ms", latency}}},
  };
  return out.dump();
}

std::string service::metrics_text() const {
  const auto s = store_.stats();
  const auto db = pool_.stats();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP dataloader_" << name << ' ' << help << "\n# TYPE dataloader_" << name << ' ' << type << '\n'
      << "dataloader_" << name << ' ' << value << '\n';
  };
  metric("operations_total", "counter", "Store operations served.", s.total_operations);
  metric("loads_total", "counter", "Key lookups requested from the store's loaders.", s.loads);
  metric("queries_total", "counter", "SQL statements the store sent.", s.queries);
  metric("naive_queries_total", "counter", "Statements one query per lookup would have sent.", s.naive_queries);
  metric("queries_saved", "gauge", "naive_queries_total minus queries_total.", s.queries_saved());
  metric("efficiency_gain", "gauge", "queries_saved / queries_total.", s.efficiency_gain());
  metric("batch_size", "gauge", "Configured maximum batch size.", store_.options().max_batch_size);

  auto per_loader = [&](const char* name, const char* help, std::uint64_t loader_stats::*field) {
    o << "# HELP dataloader_" << name << ' ' << help << "\n# TYPE dataloader_" << name << " counter\n";
    for (const auto& [loader, l] : s.loaders) o << "dataloader_" << name << "{loader=\"" << loader << "\"} " << l.*field << '\n';
  };
  per_loader("loader_loads_total", "Loads requested, per loader.", &loader_stats::loads);
  per_loader("loader_dedup_hits_total", "Loads folded or joined, per loader.", &loader_stats::dedup_hits);
  per_loader("loader_errors_total", "Keys that resolved to an error, per loader.", &loader_stats::errors);
  o << "# HELP dataloader_loader_batch_size Keys per batch function call.\n# TYPE dataloader_loader_batch_size histogram\n";
  std::vector<std::string> batch_bounds;
  for (std::size_t i = 0; i + 1 < batch_histogram_buckets; ++i) batch_bounds.push_back(std::to_string(batch_histogram_upper_bound(i)));
  batch_bounds.push_back("+Inf");
  for (const auto& [name, l] : s.loaders)
    histogram_series(o, "dataloader_loader_batch_size", "loader=\"" + name + "\"", batch_bounds,
                     {l.batch_size_histogram.begin(), l.batch_size_histogram.end()}, static_cast<double>(l.keys));

  metric("db_pool_size", "gauge", "Configured connections.", db.pool_size);
  metric("db_connected", "gauge", "Connections up.", db.connected);
  metric("db_in_use", "gauge", "Connections with statements in flight or leased.", db.in_use);
  metric("db_waiting", "gauge", "Requests waiting for a connection.", db.waiting);
  metric("db_reconnects_total", "counter", "Connections re-established after a failure.", db.reconnects);
  metric("db_errors_total", "counter", "Statement groups that failed.", db.errors);
  metric("db_timeouts_total", "counter", "Statement groups cancelled at their deadline.", db.timeouts);
  metric("db_statements_total", "counter", "Statements executed by the pool.", db.statements);
  metric("db_round_trips_total", "counter", "Pipeline flushes.", db.round_trips);
  // Per server (primary, replicas), labelled by position in db.hosts and role.
  auto per_host = [&](const char* name, const char* type, const char* help, auto value_of) {
    o << "# HELP dataloader_" << name << ' ' << help << "\n# TYPE dataloader_" << name << ' ' << type << '\n';
    for (std::size_t i = 0; i < s.hosts.size(); ++i)
      o << "dataloader_" << name << "{host=\"" << i << "\",role=\"" << s.hosts[i].role << "\"} " << value_of(s.hosts[i]) << '\n';
  };
  metric("db_reads_held_to_primary_total", "counter",
         "Reads sent to the primary because no usable replica had replayed their position.", s.reads_held_to_primary);
  per_host("db_host_connected", "gauge", "1 when the server is reachable.", [](const auto& h) { return h.connected ? 1 : 0; });
  per_host("db_host_lag_milliseconds", "gauge", "How far a replica is behind the primary.", [](const auto& h) { return h.lag_ms; });
  per_host("db_host_statements_total", "counter", "Statements sent to the server.", [](const auto& h) { return h.statements; });
  per_host("db_host_reads_total", "counter", "Store reads routed to the server.", [](const auto& h) { return h.reads; });
  o << "# HELP dataloader_db_slow_statements_total Statements slower than --slow-statement-ms, by name.\n"
       "# TYPE dataloader_db_slow_statements_total counter\n";
  for (const auto& [name, n] : s.slow_statements)  // names are the store's identifiers: nothing to escape
    o << "dataloader_db_slow_statements_total{statement=\"" << name << "\"} " << n << '\n';
  metric("cache_serving", "gauge", "1 while the cache is listening for invalidations and may answer.", s.cache.serving ? 1 : 0);
  metric("cache_entries", "gauge", "Users with something cached.", s.cache.entries);
  metric("cache_bytes", "gauge", "Approximate memory the cached entries take.", s.cache.bytes);
  metric("cache_hits_total", "counter", "Per-user lookups answered from the cache.", s.cache.hits);
  metric("cache_misses_total", "counter", "Per-user lookups that read the database.", s.cache.misses);
  metric("cache_invalidations_total", "counter", "Users dropped by a notification or a write.", s.cache.invalidations);
  metric("cache_resyncs_total", "counter", "Times the whole cache was dropped.", s.cache.resyncs);
  metric("cache_notifications_total", "counter", "Notifications received on dataloader_invalidate.", s.cache.notifications);
  metric("cache_stale_fills_total", "counter", "Reads not cached because their user changed meanwhile.", s.cache.stale_fills);
  o << "# HELP dataloader_db_round_trip_seconds Time from a flush to its last result.\n# TYPE dataloader_db_round_trip_seconds histogram\n";
  std::vector<std::string> rt_bounds;
  for (std::size_t i = 0; i + 1 < pg::round_trip_bucket_bounds_us.size(); ++i)
    rt_bounds.push_back(le(static_cast<double>(pg::round_trip_bucket_bounds_us[i]) / 1e6));
  rt_bounds.push_back("+Inf");
  histogram_series(o, "dataloader_db_round_trip_seconds", "", rt_bounds,
                   {db.round_trip_histogram.begin(), db.round_trip_histogram.end()},
                   static_cast<double>(db.round_trip_us_sum) / 1e6);

  metric("http_requests_total", "counter", "HTTP requests handled.", counters_.requests());
  metric("http_in_flight", "gauge", "HTTP requests being handled.", counters_.in_flight());
  metric("http_connections", "gauge", "Open client connections.", counters_.connections());
  metric("http_rejected_connections_total", "counter", "Connections refused over the limit.", counters_.rejected_connections());
  metric("http_timed_out_connections_total", "counter", "Connections closed by a head, body, write or idle timeout.",
         counters_.timed_out_connections());
  o << "# HELP dataloader_http_responses_total Responses by status.\n# TYPE dataloader_http_responses_total counter\n";
  for (unsigned st = 100; st < 600; ++st)
    if (auto n = counters_.responses(st)) o << "dataloader_http_responses_total{status=\"" << st << "\"} " << n << '\n';
  o << "# HELP dataloader_http_request_duration_seconds Request latency.\n# TYPE dataloader_http_request_duration_seconds histogram\n";
  std::vector<std::string> latency_bounds;
  std::vector<std::uint64_t> latency_counts;
  for (std::size_t i = 0; i < latency_bucket_bounds_ms.size(); ++i) {
    latency_bounds.push_back(i + 1 == latency_bucket_bounds_ms.size() ? "+Inf" : le(latency_bucket_bounds_ms[i] / 1000.0));
    latency_counts.push_back(counters_.bucket(i));
  }
  histogram_series(o, "dataloader_http_request_duration_seconds", "", latency_bounds, latency_counts,
                   counters_.latency_sum_ms() / 1000.0);
  return o.str();
}

}  // namespace dataloader::http
