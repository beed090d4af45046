/**
 * The page's bundle (web/dist): built with Vite when it is missing or older than its sources, so a
 * fresh clone's `npm start` serves the page without a separate build step.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** True when web/dist/index.html is older than any source of the page (or missing). */
export function webBundleStale(root = WEB_ROOT): boolean {
  const built = join(root, 'dist', 'index.html');
  if (!existsSync(built)) return true;
  const sources = ['index.html', 'vite.config.ts', 'src'].map((p) => newestMtime(join(root, p)));
  // The page's API types come from the server's protocol.
  sources.push(newestMtime(fileURLToPath(new URL('./protocol.ts', import.meta.url))));
  return Math.max(...sources) > statSync(built).mtimeMs;
}

/** Builds web/dist when stale; says so through `log`. Returns the dist folder. */
export async function ensureWebBundle(log: (line: string) => void, root = WEB_ROOT): Promise<string> {
  const dist = join(root, 'dist');
  if (!webBundleStale(root)) return dist;
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    throw new Error(
      'serve: web/dist is missing or stale and Vite is not installed; run npm ci (with dev dependencies), then npm run build:web',
    );
  }
  log('building the web page (vite) ...');
  const started = performance.now();
  await vite.build({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'warn' });
  log(`built web/dist in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return dist;
}
