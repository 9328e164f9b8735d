// Headless-Chromium test of the gru-web package: WebGPU on SwiftShader (Chromium's software
// Vulkan), the demo page's parity suite (GPU forward vs the wasm CPU reference, streaming
// sessions, golden files, bad inputs), a screenshot of the filled page.
//
//   node crates/gru-web/tests/browser.mjs [--out DIR] [--chromium PATH] [--timeout SECONDS] [--headed]
//
// Needs crates/gru-web/www/pkg (scripts/build-web.sh) and `npm ci` in crates/gru-web
// (playwright-core only; the browser is the system's /usr/bin/chromium, never downloaded).
// The page's device is made with WebGPU's default limits (?limits=default: 8 storage buffers
// per stage, 128 MiB bindings, 16 KiB workgroup memory), checked from adapterInfo().
// Exit 0 only when: a WebGPU adapter was found (the GPU really ran, no CPU fallback), at least
// 20 GPU forward cases and every case are ok, the streaming cases and both golden files
// (PyTorch, Keras; GPU and CPU) are ok, and every bad input was rejected with a message.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const crate = path.resolve(here, '..');
const repo = path.resolve(crate, '..', '..');
const www = path.join(crate, 'www');
const golden = path.join(repo, 'tests', 'data', 'golden');

import { CHROMIUM_ARGS } from './chromium.mjs';

function parseArgs(argv) {
  const o = { out: path.join(crate, 'test-output'), chromium: process.env.CHROMIUM || '/usr/bin/chromium', timeout: 480, headed: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') o.out = path.resolve(val());
    else if (a === '--chromium') o.chromium = val();
    else if (a === '--timeout') o.timeout = Number(val());
    else if (a === '--headed') o.headed = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node crates/gru-web/tests/browser.mjs [--out DIR] [--chromium PATH] [--timeout SECONDS] [--headed]');
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  if (!Number.isFinite(o.timeout) || o.timeout <= 0) die('--timeout needs a positive number of seconds');
  return o;
}

function die(msg) {
  console.error(`\nbrowser test FAILED: ${msg}\n`);
  process.exit(1);
}

const fmt = (v) => (v === null || v === undefined ? '-' : typeof v === 'number' ? (Number.isNaN(v) ? 'NaN' : v === 0 ? '0' : Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5 ? v.toExponential(2) : v.toPrecision(4)) : String(v));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pkg = path.join(www, 'pkg', 'gru_web.js');
  if (!fs.existsSync(pkg)) {
    die(`${path.relative(process.cwd(), pkg)} is missing: build the wasm package first (scripts/build-web.sh)`);
  }
  if (!fs.existsSync(opts.chromium)) die(`no Chromium at ${opts.chromium} (apt-get install chromium, or pass --chromium PATH)`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    die(`playwright-core is not installed: run \`npm ci\` in crates/gru-web (${e.message})`);
  }
  fs.mkdirSync(opts.out, { recursive: true });

  const server = await serve({ root: www, golden });
  console.log(`serving ${www} and ${golden} at ${server.url}`);
  let browser;
  const cleanup = async () => {
    if (browser) await browser.close().catch(() => {});
    await server.close();
  };
  process.on('SIGINT', () => cleanup().then(() => process.exit(130)));

  try {
    browser = await chromium.launch({
      executablePath: opts.chromium,
      headless: !opts.headed,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    console.log(`chromium ${browser.version()} (${opts.chromium}) ${CHROMIUM_ARGS.join(' ')}`);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const pageErrors = [];
    page.on('console', (m) => {
      const t = m.type();
      if (t === 'error' || t === 'warning') console.log(`[page ${t}] ${m.text()}`);
    });
    page.on('pageerror', (e) => {
      pageErrors.push(e.message);
      console.log(`[page exception] ${e.message}`);
    });
    page.on('requestfailed', (r) => console.log(`[page request failed] ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) console.log(`[page http ${r.status()}] ${r.url()}`);
    });
    page.on('crash', () => console.log('[page crashed]'));

    // limits=default: the device is created with WebGPU's default limits (SwiftShader's own
    // are larger), so every case shows the kernels fit what any adapter grants.
    const url = `${server.url}index.html?parity=1&golden=/golden&limits=default`;
    console.log(`opening ${url}`);
    const t0 = Date.now();
    await page.goto(url, { waitUntil: 'load' });

    // Progress while waiting: the table's rows as they appear.
    let shown = 0;
    const progress = setInterval(async () => {
      try {
        const n = await page.evaluate(() => document.querySelectorAll('#parity-table tbody tr').length);
        if (n !== shown) {
          shown = n;
          console.log(`  … ${n} cases done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
        }
      } catch { /* navigating or closed */ }
    }, 15_000);
    try {
      await page.waitForFunction(() => window.gruParity !== undefined || window.gruParityError !== undefined, null, {
        timeout: opts.timeout * 1000,
        polling: 500,
      });
    } catch (e) {
      clearInterval(progress);
      await page.screenshot({ path: path.join(opts.out, 'demo.png'), fullPage: true }).catch(() => {});
      // What did finish, from the page's table (the last row is the case before the hang).
      const rows = await page
        .evaluate(() => [...document.querySelectorAll('#parity-table tbody tr')].map((tr) => [...tr.cells].map((td) => td.innerText.replace(/\s+/g, ' ').trim()).join(' | ')))
        .catch(() => []);
      for (const r of rows) console.log(`  ${r}`);
      fs.writeFileSync(path.join(opts.out, 'parity.json'), JSON.stringify({ url, error: 'timed out', finishedRows: rows }, null, 2) + '\n');
      throw new Error(`the parity run did not finish within ${opts.timeout} s (a hang?): ${e.message.split('\n')[0]}`);
    }
    clearInterval(progress);
    const { result, error } = await page.evaluate(() => ({ result: window.gruParity ?? null, error: window.gruParityError ?? null }));
    // The page then runs the demo once (forward + a short stream) for the screenshot.
    let demo = null;
    try {
      await page.waitForFunction(() => window.gruDemoDone === true, null, { timeout: 120_000, polling: 250 });
      demo = await page.evaluate(() => window.gruDemo ?? null);
    } catch (e) {
      demo = { error: `the demo run did not finish: ${e.message.split('\n')[0]}` };
    }
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(opts.out, 'demo.png'), fullPage: true });
    const browserAdapter = await page.evaluate(() => window.gruBrowserAdapter ?? null);
    const elapsed = (Date.now() - t0) / 1000;

    const report = { url, chromium: browser.version(), flags: CHROMIUM_ARGS, elapsedSeconds: elapsed, browserAdapter, error, demo, pageErrors, ...(result || {}) };
    fs.writeFileSync(path.join(opts.out, 'parity.json'), JSON.stringify(report, null, 2) + '\n');

    if (error) {
      console.log(`\nparity run threw: ${error}`);
    }
    const cases = result?.cases ?? [];
    const nameW = Math.min(88, Math.max(20, ...cases.map((c) => c.name.length)));
    for (const c of cases) {
      const line = [
        c.ok ? 'ok  ' : 'FAIL',
        c.name.padEnd(nameW),
        (c.shape || '').padEnd(24),
        `max|Δ| ${fmt(c.maxAbsErr)}`.padEnd(18),
        `${fmt(c.ms)} ms`.padStart(12),
      ].join('  ');
      console.log(line);
      if (!c.ok && c.worstIndex !== null && c.worstIndex !== undefined && c.worstIndex >= 0) {
        console.log(`        worst element #${c.worstIndex}${c.worstIn ? ` of ${c.worstIn}` : ''}: got ${c.got}, expected ${c.expected}`);
      }
      if (c.message && (c.kind === 'bad' || !c.ok)) console.log(`        ${c.kind === 'bad' && c.ok ? 'rejected: ' : ''}${c.message}`);
    }
    const adapter = result?.adapter ?? null;
    const adapterText = adapter ? `${browserAdapter ? browserAdapter + ' / ' : ''}${(adapter.description || '').trim() || adapter.name} (backend ${adapter.backend}, ${adapter.deviceType}, shader-f16 ${adapter.shaderF16}, subgroups ${adapter.subgroups}, limits ${JSON.stringify(adapter.limits)})` : 'none';
    console.log(`\nadapter: ${adapterText}`);
    if (demo) console.log(`demo run: ${JSON.stringify(demo)}`);

    // ---- verdict ----
    const problems = [];
    if (error) problems.push(`the parity run threw: ${error}`);
    if (!adapter) problems.push('no WebGPU adapter: the GPU never ran (a CPU fallback does not count)');
    else {
      // WebGPU's defaults, as the page asked (?limits=default).
      const want = { maxStorageBuffersPerShaderStage: 8, maxStorageBufferBindingSize: 134217728, maxComputeWorkgroupsPerDimension: 65535, maxComputeWorkgroupStorageSize: 16384 };
      for (const [k, v] of Object.entries(want)) {
        if (adapter.limits?.[k] !== v) problems.push(`device limit ${k}: expected WebGPU's default ${v}, got ${adapter.limits?.[k]}`);
      }
    }
    const kind = (k) => cases.filter((c) => c.kind === k);
    const fwd = kind('forward');
    if (fwd.length < 20) problems.push(`only ${fwd.length} GPU forward cases ran (at least 20 needed)`);
    const streams = kind('stream');
    if (streams.length === 0) problems.push('no streaming case ran');
    const goldens = kind('golden');
    for (const need of ['golden torch_2layer_bidir_batchfirst_h0', 'golden keras_reset_after_true']) {
      for (const dev of ['gpu', 'cpu']) {
        const hits = goldens.filter((c) => c.name.startsWith(need) && c.device === dev);
        if (hits.length === 0) problems.push(`${need} (${dev}) did not run`);
      }
    }
    const bad = kind('bad');
    if (bad.length === 0) problems.push('no bad-input case ran');
    for (const c of bad) if (c.ok && !c.message) problems.push(`${c.name}: rejected without a message`);
    for (const c of cases) if (!c.ok) problems.push(`${c.name}: ${c.message || 'not ok'}`);
    if (result && result.compareImpl !== 'wasm') problems.push(`gru.compare was not used: ${result.compareImpl}`);
    if (!demo || demo.error || demo.forwardError || demo.streamError) problems.push(`demo run: ${JSON.stringify(demo)}`);
    else {
      if (!demo.forward?.ok) problems.push(`demo forward: GPU and CPU differ (${JSON.stringify(demo.forward)})`);
      if (demo.forward && demo.forward.device !== 'gpu') problems.push('demo forward ran on the CPU');
      if (!demo.stream?.ok) problems.push(`demo stream: CPU check failed (${JSON.stringify(demo.stream)})`);
    }
    if (pageErrors.length) problems.push(`${pageErrors.length} uncaught page exception(s): ${pageErrors[0]}`);

    const failures = cases.filter((c) => !c.ok).length;
    console.log(`\nscreenshot: ${path.join(opts.out, 'demo.png')}; results: ${path.join(opts.out, 'parity.json')}; ${elapsed.toFixed(1)} s`);
    console.log(`browser parity: ${cases.length} cases, ${failures} failures, adapter: ${adapterText}`);
    if (problems.length) {
      console.log(`\nbrowser test FAILED (${problems.length} problem${problems.length > 1 ? 's' : ''}):`);
      for (const p of problems) console.log(`  - ${p}`);
      process.exitCode = 1;
    } else {
      console.log(`browser test passed: ${fwd.length} GPU forward cases, ${streams.length} streaming, ${goldens.length} golden, ${bad.length} bad inputs rejected`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(`\nbrowser test FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
