import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import semver from 'semver';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The real build (`npm run build`, which `npm install` runs as `prepare`, and the Dockerfile's): the server compiled by
 * tsc from tsconfig.build.json runs with plain node — no tsx, no .ts import left — needs only production dependencies,
 * finds its migrations and pages, and serves /health. The build goes to a scratch directory under test-results/ (not
 * dist/, which a developer's hub may be running from), without type checking (`npm run typecheck` does that) to stay fast.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const OUT = join(ROOT, 'test-results', `build-${process.pid}-${Date.now()}`);
const dataDir = mkdtempSync(join(tmpdir(), 'hutong-build-'));
let child: ChildProcess | undefined;

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
  }
  for (const dir of [OUT, dataDir, `${dataDir}-keys`]) rmSync(dir, { recursive: true, force: true });
});

const freePort = () =>
  new Promise<number>((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address !== null ? ok(address.port) : fail(new Error('no port'))));
    });
  });

const jsFiles = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name));

/** The package a bare import specifier names ('@scope/name/sub' → '@scope/name'). */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

describe('the build', () => {
  it('compiles the server to plain JavaScript that imports only production dependencies, starts with node and serves /health', async () => {
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-server.js'), '--out-dir', OUT, '--no-check'], { encoding: 'utf8' });
    expect(built.status, `${built.stdout}${built.stderr}`).toBe(0);
    expect(existsSync(join(OUT, 'cli', 'cli.js'))).toBe(true);
    expect(existsSync(join(OUT, 'fx', 'demo-rates.xml')), 'data files beside the modules').toBe(true);
    expect(existsSync(join(OUT, 'cards', 'cards.test.js')), 'no test file in the build').toBe(false);

    const builtins = new Set(builtinModules);
    const imported = new Set<string>();
    for (const file of jsFiles(OUT)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm)) {
        const specifier = m[1] ?? m[2] ?? m[3] ?? '';
        expect(specifier, `${file} imports ${specifier}`).not.toMatch(/\.tsx?$/);
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue;
        imported.add(packageOf(specifier));
      }
    }
    expect(imported.size).toBeGreaterThan(10);
    const notProduction = [...imported].filter((name) => pkg.dependencies[name] === undefined);
    expect(notProduction, 'the built server imports packages that are not production dependencies').toEqual([]);

    const port = await freePort();
    const env = { ...process.env, HUTONG_DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: '', HUTONG_OPERATOR_TOKEN: '', HUTONG_DEMO: '', HUTONG_WEBHOOKS: '0' };
    const entry = `const { runCli } = await import(${JSON.stringify(join(OUT, 'cli', 'cli.js'))}); process.exitCode = await runCli(['start']);`;
    // Plain node: no tsx loader, so a .ts module or a TypeScript-only construct left in the build fails here.
    child = spawn(process.execPath, ['--input-type=module', '-e', entry], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    let out = '';
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`the built hub did not start: ${out}`)), 90_000);
      child?.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('Ctrl-C stops the hub')) {
          clearTimeout(timer);
          ok();
        }
      });
      child?.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child?.once('exit', (code) => fail(new Error(`the built hub exited (${code}): ${out}`)));
    });
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status, out).toBe(200);
    // Migrations were found from the build (the hub would not have started without them), and so are the pages when
    // they are built (npm install builds them).
    if (existsSync(join(ROOT, 'web', 'dist', 'wallet', 'index.html'))) expect((await fetch(`http://127.0.0.1:${port}/wallet`)).status).toBe(200);
  }, 180_000);

  it('engines and dependencies agree: every production package accepts the oldest Node the engines field allows; the postgres patch matches the pinned version', () => {
    const oldest = semver.minVersion(pkg.engines.node)?.version ?? '';
    expect(oldest).not.toBe('');
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }> };
    const refusing = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.dev !== true && p.engines !== undefined && !Array.isArray(p.engines) && p.engines.node !== undefined && !semver.satisfies(oldest, p.engines.node))
      .map(([path, p]) => `${path}@${p.version ?? '?'} wants node ${Array.isArray(p.engines) ? '' : (p.engines?.node ?? '')}`);
    expect(refusing).toEqual([]);
    for (const patch of readdirSync(join(ROOT, 'patches'))) {
      const m = /^(.+)\+(\d+\.\d+\.\d+)\.patch$/.exec(patch);
      expect(m, patch).not.toBeNull();
      const [, name = '', version = ''] = m ?? [];
      const declared = pkg.dependencies[name] ?? pkg.devDependencies[name];
      expect(declared, `${patch}: the package is pinned to the version the patch was made for`).toBe(version);
      expect(lock.packages[`node_modules/${name}`]?.version).toBe(version);
    }
  });
});

describe('the container image', () => {
  it('the Dockerfile builds with npm ci and npm run build from files that exist, and ships what the built hub reads', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const [buildStage = '', runtimeStage = ''] = dockerfile.split(/^FROM .* AS runtime$/m);
    expect(buildStage).toMatch(/RUN npm ci [^\n]*&& npm run build && npm prune --omit=dev/);
    for (const m of buildStage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of (m[1] ?? '').split(' ')) expect(existsSync(join(ROOT, source)), `Dockerfile copies ${source}`).toBe(true);
    }
    // The runtime stage: the package root (package.json, migrations/), the build, the pages, the guides the hub serves at
    // /docs/guides, the CLI and the pruned production dependencies; no sources; an unprivileged user.
    const shipped = [...runtimeStage.matchAll(/^COPY --from=build \S+ \/app\/(\S+) /gm)].map((m) => m[1]);
    expect(shipped.sort()).toEqual(['bin', 'dist', 'docs/guides', 'migrations', 'node_modules', 'package.json', 'web/dist']);
    expect(runtimeStage).toMatch(/^USER node$/m);
    const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toMatch(/image: postgres:15/);
    expect(compose).toMatch(/DATABASE_URL: postgres:\/\/\S+@postgres:5432\//);
  });
});
