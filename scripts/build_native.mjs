#!/usr/bin/env node
// Builds the native backend (binding.gyp -> build/Release/glimpse_native.node) with node-gyp.
// `npm install` / `npm ci` run it as the package's install script: a failed build must not fail the
// install, so it prints one warning and exits 0 (glimpse then runs on its js backend). With
// --strict (`npm run build:native`) a failure exits 1 and shows the compiler output.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const strict = process.argv.includes('--strict');
const addon = join(root, 'build', 'Release', 'glimpse_native.node');

// npm hands its bundled node-gyp to lifecycle scripts; outside npm, look next to npm or locally.
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) {
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  candidates.push(
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  );
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find((p) => p && existsSync(p));
}

function fail(reason, output) {
  rmSync(addon, { force: true });
  if (strict) {
    if (output) process.stderr.write(output);
    console.error(`glimpse: building the native backend failed: ${reason}`);
    process.exit(1);
  }
  console.warn(
    `glimpse: could not build the native backend (${reason}); glimpse will run on its slower js backend. ` +
      'To build it, install a C++17 compiler, make and python3, then run `npm run build:native`.',
  );
  process.exit(0);
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) fail('node-gyp not found');

const args = [nodeGyp, 'rebuild', `--jobs=${availableParallelism()}`];
// Headers installed next to node (distribution packages, official tarballs) make the build work
// offline; otherwise node-gyp downloads them.
const prefix = resolve(dirname(process.execPath), '..');
if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);

const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
if (r.error) fail(r.error.message, output);
if (r.status !== 0) {
  // The first compiler or gyp error says what is missing; the rest is noise for an install log.
  const line = output
    .split('\n')
    .find(
      (l) =>
        /error|not found|No such file/i.test(l) &&
        !/^gyp ERR! (stack|System|command|cwd|node|not ok)/.test(l),
    );
  fail(line ? line.trim().slice(0, 300) : `node-gyp exited with status ${r.status}`, output);
}
if (!existsSync(addon)) fail('node-gyp succeeded but produced no addon', output);
console.log(`glimpse: built the native backend (${addon})`);
