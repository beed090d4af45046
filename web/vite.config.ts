// The explorer page: plain TypeScript and DOM, bundled into web/dist, which `glimpse serve` serves.
// `npx vite web` runs a dev server on 5174 that forwards the API to a `glimpse serve` on 5173.
import { defineConfig } from 'vite';

const api = 'http://127.0.0.1:5173';

export default defineConfig({
  base: '/',
  // The samples are served by the glimpse server itself (web/public/samples), not copied into dist.
  publicDir: false,
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  server: { port: 5174, strictPort: true, proxy: { '/api': api, '/samples': api } },
});
