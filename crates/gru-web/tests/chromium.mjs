// Shared by browser.mjs and bench.mjs.
// The flags under which Chromium's WebGPU runs on SwiftShader headless (no GPU, no display).
// --enable-unsafe-webgpu is the one that matters on Linux (without it: "No available adapters");
// the background-networking flags keep a sandboxed machine's refused connections quiet.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
];
