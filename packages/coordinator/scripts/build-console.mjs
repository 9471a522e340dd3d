// Builds the web console (packages/coordinator/console) into packages/coordinator/dist/www:
// the Preact components (TSX) and uPlot bundled and minified by esbuild into console.js,
// their style sheets (the console's and uPlot's) into console.css, the page copied. Run by
// `npm run build`; the coordinator serves the result at `/` (src/console/static-routes.ts).
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('../console/', import.meta.url);
const out = new URL('../dist/www/', import.meta.url);
await mkdir(out, { recursive: true });
await build({
  entryPoints: [new URL('src/main.tsx', root).pathname],
  // The style sheets the script imports go to console.css beside it.
  outfile: new URL('console.js', out).pathname,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(new URL('index.html', root), new URL('index.html', out));
