// The Node.js peer of dataloader-server's prefetch, written the way graphql/dataloader's
// users write a long-lived service: dataloader 2.2.3 and node-postgres (`pg`), one loader
// per read shared by every request (cache off: the data changes), batches scheduled with
// setImmediate so that the requests parsed in one turn of the event loop share them.
// The same reads as the C++ prefetch, each one statement per batch:
//   profiles     WHERE user_id = ANY($1)
//   onboarding   WHERE user_id = ANY($1)
//   memories     the 20 most recent per user and the user's count (LATERAL per user)
//
//   node bench/node/server.js PORT DATABASE_URL [--workers N] [--pool N]
// --workers N runs N processes (node:cluster) sharing the port, each with its own pool of
// --pool connections (default: 2 / workers, at least 1) and its own loaders.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');

const [port, databaseUrl] = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const workers = flag('--workers', 1);
const poolSize = flag('--pool', Math.max(1, Math.floor(2 / workers)));

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let ready = 0;
  cluster.on('message', (_, m) => { if (m === 'ready' && ++ready === workers) console.log('ready'); });
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  serve();
}

function serve() {
  const DataLoader = require('dataloader');
  const { Pool, types } = require('pg');
  types.setTypeParser(20, Number);  // count(*) as a number, as the C++ service sends it
  const pool = new Pool({ connectionString: databaseUrl, max: poolSize });
  const options = { cache: false, batchScheduleFn: (callback) => setImmediate(callback) };

  const byUser = (ids, rows, pick) => {
    const found = new Map(rows.map((r) => [r.user_id, pick(r)]));
    return ids.map((id) => (found.has(id) ? found.get(id) : null));
  };
  const profiles = new DataLoader(async (ids) => {
    const { rows } = await pool.query('SELECT user_id, profile FROM profiles WHERE user_id = ANY($1::text[])', [ids]);
    return byUser(ids, rows, (r) => r.profile);
  }, options);
  const onboarding = new DataLoader(async (ids) => {
    const { rows } = await pool.query('SELECT user_id, state FROM onboarding WHERE user_id = ANY($1::text[])', [ids]);
    return byUser(ids, rows, (r) => r.state);
  }, options);
  const memories = new DataLoader(async (ids) => {
    const { rows } = await pool.query(
      'SELECT u.user_id, c.n, m.category, m.key, m.value, m.created_at, m.updated_at ' +
      'FROM unnest($1::text[]) AS u(user_id) ' +
      'CROSS JOIN LATERAL (SELECT count(*) AS n FROM memories WHERE user_id = u.user_id) c ' +
      'LEFT JOIN LATERAL (SELECT category, key, value, created_at, updated_at FROM memories ' +
      '  WHERE user_id = u.user_id ORDER BY updated_at DESC, category, key LIMIT 20) m ON true', [ids]);
    const out = new Map(ids.map((id) => [id, { count: 0, recent: [] }]));
    for (const r of rows) {
      const user = out.get(r.user_id);
      user.count = r.n;
      if (r.key !== null) {
        user.recent.push({ category: r.category, created_at: r.created_at.toISOString(), key: r.key,
                           updated_at: r.updated_at.toISOString(), user_id: r.user_id, value: r.value });
      }
    }
    return ids.map((id) => out.get(id));
  }, options);

  const prefix = '/v1/users/';
  const server = http.createServer(async (req, res) => {
    const path = req.url.split('?')[0];
    if (req.method !== 'GET' || !path.startsWith(prefix) || !path.endsWith('/prefetch')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end('{"error":"not found"}');
    }
    const userId = decodeURIComponent(path.slice(prefix.length, -'/prefetch'.length));
    try {
      const [profile, mem, state] = await Promise.all([profiles.load(userId), memories.load(userId), onboarding.load(userId)]);
      const body = JSON.stringify({ memory_count: mem.count, onboarding: state, profile,
                                    recent_memories: mem.recent, user_id: userId });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    } catch (e) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(e.message || e) }));
    }
  });
  server.keepAliveTimeout = 30000;
  server.listen(Number(port), '127.0.0.1', () => {
    if (cluster.isWorker) process.send('ready');
    else console.log('ready');
  });
}
