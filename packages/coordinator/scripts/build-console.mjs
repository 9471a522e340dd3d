// Builds the web console (packages/coordinator/console) into packages/coordinator/dist/www:
// the TypeScript bundled and minified by esbuild, the page and style sheet copied. Run by
// `npm run build`; the coordinator serves the result at `/` (src/console/static-routes.ts).
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('../console/', import.meta.url);
const out = new URL('../dist/www/', import.meta.url);
await mkdir(out, { recursive: true });
await build({
  entryPoints: [new URL('src/main.ts', root).pathname],
  outfile: new URL('console.js', out).pathname,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(new URL('index.html', root), new URL('index.html', out));
await copyFile(new URL('console.css', root), new URL('console.css', out));
