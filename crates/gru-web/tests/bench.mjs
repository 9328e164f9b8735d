// Forward timings of the wasm package in headless Chromium on SwiftShader (informational: a
// CPU, like lavapipe; BENCHMARKS.md puts them beside gru-bench's native lavapipe figures).
//
//   node crates/gru-web/tests/bench.mjs [H:B:T,H:B:T,...]
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';
import { CHROMIUM_ARGS } from './chromium.mjs';

const crate = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const www = path.join(crate, 'www');
if (!fs.existsSync(path.join(www, 'pkg', 'gru_web.js'))) {
  console.error('bench: www/pkg/gru_web.js is missing; run scripts/build-web.sh first');
  process.exit(1);
}
const shapes = process.argv[2] || '';
const server = await serve({ root: www });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: CHROMIUM_ARGS,
});
let failed = false;
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}bench.html${shapes ? `?shapes=${shapes}` : ''}`);
  await page.waitForFunction(() => window.gruBench || window.gruBenchError, null, { timeout: 600_000 });
  const error = await page.evaluate(() => window.gruBenchError);
  if (error) throw new Error(error);
  console.log(`chromium ${browser.version()}`);
  console.log(await page.evaluate(() => document.getElementById('out').textContent));
  const rows = await page.evaluate(() => window.gruBench.rows);
  failed = rows.some((r) => !r.ok);
} catch (e) {
  console.error(`bench: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
  await server.close();
}
process.exit(failed ? 1 : 0);
