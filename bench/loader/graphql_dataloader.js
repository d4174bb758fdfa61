// The same loop as loader_bench's BM_load_distinct, on graphql/dataloader (Node.js):
// N async functions each awaiting loader.load(distinct key), cache off, a trivial batch
// function. Prints one JSON line per coroutine count: median ns per load over repeats.
'use strict';
const DataLoader = require('dataloader');

async function runDistinct(coroutines, loadsEach) {
  const loader = new DataLoader(async (keys) => keys, { cache: false });
  const workers = [];
  for (let c = 0; c < coroutines; ++c) {
    workers.push((async () => {
      const base = c * loadsEach;
      let sum = 0;
      for (let i = 0; i < loadsEach; ++i) sum += await loader.load(base + i);
      return sum;
    })());
  }
  await Promise.all(workers);
}

async function main() {
  const repeats = Number(process.argv[2] || 5);
  for (const coroutines of [10, 100, 1000]) {
    const loadsEach = Math.floor(200000 / coroutines);
    await runDistinct(coroutines, loadsEach);  // warm-up (JIT)
    const samples = [];
    for (let r = 0; r < repeats; ++r) {
      const t0 = process.hrtime.bigint();
      await runDistinct(coroutines, loadsEach);
      const t1 = process.hrtime.bigint();
      samples.push(Number(t1 - t0) / (coroutines * loadsEach));
    }
    samples.sort((a, b) => a - b);
    console.log(JSON.stringify({ coroutines, ns_per_load: samples[Math.floor(samples.length / 2)] }));
  }
}
main();
