/**
 * Builds the web UI into build/ui (served by `kiln serve` at /): esbuild
 * bundles ui/src/main.ts with d3 and d3-flame-graph into one ES module and
 * one stylesheet, named by content hash so browsers never run a stale bundle
 * against a newer API; index.html is written last with those names.
 *
 *   npm run build:ui          (tsx ui/build.ts)
 *   tsx ui/build.ts --dev     unminified
 *
 * Type checking is separate: npx tsc -p ui/tsconfig.json --noEmit.
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const HERE = import.meta.dirname;
const OUT = join(HERE, '..', 'build', 'ui');

export async function buildUi(opts: { outDir?: string; minify?: boolean } = {}): Promise<{ outDir: string; js: string; css: string; bytes: number }> {
  const outDir = opts.outDir ?? OUT;
  const assets = join(outDir, 'assets');
  // A fresh directory each time: old hashed bundles would otherwise pile up.
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: [join(HERE, 'src', 'main.ts')],
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    platform: 'browser',
    minify: opts.minify ?? true,
    sourcemap: true,
    outdir: assets,
    entryNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
    legalComments: 'linked',
  });
  const outputs = Object.keys(result.metafile.outputs);
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`ui build: expected a .js and a .css output, got ${outputs.join(', ')}`);
  const bytes = outputs.reduce((n, f) => n + (f.endsWith('.map') ? 0 : result.metafile.outputs[f]!.bytes), 0);
  // The prefetch script goes inline in <head>, so the graph request starts before the bundle is even fetched.
  const prefetch = await build({
    entryPoints: [join(HERE, 'src', 'prefetch.ts')],
    bundle: true,
    format: 'iife',
    target: ['es2022'],
    platform: 'browser',
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  const inline = prefetch.outputFiles[0]!.text.trim().replace(/<\/script/gi, '<\\/script');
  const html = readFileSync(join(HERE, 'index.html'), 'utf8')
    .replace('%PREFETCH%', () => inline)
    .replace('%JS%', `assets/${basename(js)}`)
    .replace('%CSS%', `assets/${basename(css)}`);
  writeFileSync(join(outDir, 'index.html'), html);
  return { outDir, js: basename(js), css: basename(css), bytes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t = performance.now();
  const r = await buildUi({ minify: !process.argv.includes('--dev') });
  console.log(`ui: ${r.outDir} (${r.js}, ${r.css}, ${Math.round(r.bytes / 1024)} KiB) in ${Math.round(performance.now() - t)} ms`);
}
