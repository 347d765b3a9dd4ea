// A Node.js program profiled by Pyroscope's own SDK (@pyroscope/nodejs), which
// pushes wall and heap profiles under one application name to /ingest.
// Usage: node pyroscope-node.mjs SERVER_URL APP_NAME SECONDS. Prints {"pid": ...}
// when the SDK has started, {"done": true} once it has stopped and flushed.
import Pyroscope from '@pyroscope/nodejs';

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
