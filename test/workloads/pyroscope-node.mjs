// A Node.js program profiled by Pyroscope's own SDK (@pyroscope/nodejs), which
// pushes wall and heap profiles under one application name to /ingest.
// Usage: node pyroscope-node.mjs SERVER_URL APP_NAME SECONDS. Prints {"pid": ...}
// when the SDK has started, a {"push": ...} line for every push the SDK made
// (what it sent: sampleRate, the pprof's period and sample types, the sum of
// each sample type's values; and the answer's status), and {"done": true}
// once it has stopped and flushed.
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import Pyroscope from '@pyroscope/nodejs';

// The SDK uploads with the global fetch: watch what goes by, changing nothing.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const res = await realFetch(input, init);
  const url = new URL(typeof input === 'string' ? input : input.url);
  if (url.pathname.endsWith('/ingest') && init?.body) {
    const body = Buffer.from(init.body);
    const p = Profile.decode(body[0] === 0x1f ? gunzipSync(body) : body);
    const str = (i) => p.stringTable.strings[Number(i)];
    const types = p.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`);
    const totals = Object.fromEntries(types.map((t, i) => [t, p.sample.reduce((a, s) => a + Number(s.value[i] ?? 0), 0)]));
    const push = { status: res.status, sampleRate: url.searchParams.get('sampleRate'), period: Number(p.period), types, totals };
    console.log(JSON.stringify({ push }));
  }
  return res;
};

const [url, appName, seconds] = process.argv.slice(2);
Pyroscope.init({ serverAddress: url, appName, tags: { region: 'eu' }, flushIntervalMs: 5000 });
Pyroscope.start();
console.log(JSON.stringify({ pid: process.pid }));

// Kept alive, so the heap profile holds them: a few MB allocated here.
const kept = [];
function keepAllocating() {
  kept.push(new Array(50_000).fill(kept.length));
  if (kept.length > 40) kept.shift();
}

function burnCpu() {
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  return x;
}

const end = Date.now() + Number(seconds) * 1000;
const timer = setInterval(() => {
  burnCpu();
  keepAllocating();
  if (Date.now() < end) return;
  clearInterval(timer);
  Pyroscope.stop().then(() => {
    console.log(JSON.stringify({ done: true }));
    process.exit(0);
  });
}, 20);
