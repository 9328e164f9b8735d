// A tiny static file server for the gru-web demo page (node's http module only).
//
//   import { serve } from './serve.mjs';
//   const { url, close } = await serve({ root: 'crates/gru-web/www', golden: 'tests/data/golden' });
//
// serves `root` at / and `golden` (optional) at /golden/, on 127.0.0.1, port 0 (a random free
// port) unless `port` is given. Paths that leave a root are refused (403).
//
// Run by hand to look at the demo:  node crates/gru-web/tests/serve.mjs [port]
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.npy': 'application/octet-stream',
  '.npz': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};

/** `rel` (URL path, already decoded) under `root`, or null when it would leave `root`. */
function resolveUnder(root, rel) {
  if (rel.includes('\0')) return null;
  const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  return full;
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text + '\n');
}

/**
 * Serves `root` at / and `golden` at /golden/ on 127.0.0.1.
 * Resolves to {url, close}: `url` ends with '/', `close()` resolves once the server stopped.
 */
export function serve({ root, golden = null, port = 0, host = '127.0.0.1', log = null } = {}) {
  if (!root) throw new Error('serve: root is required');
  const roots = { site: path.resolve(root), golden: golden ? path.resolve(golden) : null };
  // Symlinked roots: compare against their real paths.
  for (const k of Object.keys(roots)) if (roots[k] && fs.existsSync(roots[k])) roots[k] = fs.realpathSync(roots[k]);

  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return send(res, 400, 'bad request');
    }
    let base = roots.site;
    let rel = pathname;
    if (pathname === '/golden' || pathname.startsWith('/golden/')) {
      if (!roots.golden) return send(res, 404, 'no golden directory served');
      base = roots.golden;
      rel = pathname.slice('/golden'.length) || '/';
    }
    let file = resolveUnder(base, rel);
    if (!file) return send(res, 403, 'forbidden');
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        return fs.stat(file, (err2, st2) => finish(err2, st2));
      }
      finish(err, st);
    });
    function finish(err, st) {
      if (err || !st.isFile()) {
        if (log) log(`404 ${pathname}`);
        return send(res, 404, 'not found: ' + pathname);
      }
      // A symlink inside the root must not lead outside it either.
      let real;
      try { real = fs.realpathSync(file); } catch { return send(res, 404, 'not found'); }
      if (real !== base && !real.startsWith(base + path.sep)) return send(res, 403, 'forbidden');
      const type = MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
      res.writeHead(200, { 'content-type': type, 'content-length': st.size, 'cache-control': 'no-store' });
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      const sockets = new Set();
      server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
      resolve({
        url: `http://${host}:${p}/`,
        close: () => new Promise((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

// Run directly: serve the demo (and the goldens) for a person.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', 'www');
  const golden = path.resolve(here, '..', '..', '..', 'tests', 'data', 'golden');
  const port = process.argv[2] ? Number(process.argv[2]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: bad port ${JSON.stringify(process.argv[2])}`);
    process.exit(2);
  }
  if (!fs.existsSync(path.join(root, 'pkg', 'gru_web.js'))) {
    console.error('serve: warning: www/pkg/gru_web.js is missing; build it first with scripts/build-web.sh');
  }
  const { url } = await serve({ root, golden: fs.existsSync(golden) ? golden : null, port, log: (m) => console.log(m) });
  console.log(`gru-web demo: ${url}  (parity run: ${url}?parity=1&golden=/golden)`);
  console.log('Ctrl-C stops it.');
}
