import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/** The pages, served by the hub (src/web/routes.ts): /wallet, /console, /merchant, /issuer and /pay/<link id>; their assets under /app/assets/. */
const root = import.meta.dirname;
export default defineConfig({
  root,
  base: '/app/',
  logLevel: 'warn',
  // React's automatic JSX runtime, without a plugin (no Fast Refresh needed: the hub serves the build).
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: resolve(root, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      input: {
        wallet: resolve(root, 'wallet/index.html'),
        console: resolve(root, 'console/index.html'),
        merchant: resolve(root, 'merchant/index.html'),
        pay: resolve(root, 'pay/index.html'),
        issuer: resolve(root, 'issuer/index.html'),
      },
    },
  },
});
