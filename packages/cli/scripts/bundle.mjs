// Bundles the compiled `swarmbee` command (dist/index.js) and the threads its processes
// start (stage, training and tokenizer threads) into dist/bundle, which bin/swarmbee.js
// runs. Run by `npm run build`, after tsc.
//
// Why: Node loads an ES module graph file by file. A `swarmbee worker` process loaded ~550 ms
// of CPU worth of modules (the workspace packages and their dependencies, hundreds of
// files) before doing anything; bundled, the same code loads in ~140 ms. That is every
// worker's and coordinator's start on a Raspberry Pi, and most of what the test suite's
// hundreds of CLI processes spent before they ran.
//
// Each command stays its own chunk (main.ts imports a command's module when it runs), so a
// process still loads only the command it runs. Thread entries keep their names
// (stage-thread.js, ...) beside the chunks, where `threadEntry` looks for them. Only
// onnxruntime-node stays outside: it is a native addon, found in node_modules at run time.
// Code that reads a package's own files finds them through the package's name (see
// CONSOLE_DIR and DEFAULT_CORPUS_FILE), not beside the module, so it works bundled.
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const packages = new URL('../../', import.meta.url);
const entry = (path) => fileURLToPath(new URL(path, packages));
const outdir = fileURLToPath(new URL('../dist/bundle/', import.meta.url));

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [
    entry('cli/dist/index.js'),
    entry('engine/dist/stage-thread.js'),
    entry('engine/dist/train/training-thread.js'),
    entry('coordinator/dist/prompt/tokenizer-thread.js'),
    // The processes of `bench parallel --parts allreduce` (member-process.ts forks it by name).
    entry('bench/dist/parallel/allreduce-member.js'),
    // The processes of `bench scale --parts steps` (step.ts runs it beside itself).
    entry('bench/dist/scale/step-child.js'),
  ],
  outdir,
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: ['node20'],
  external: ['onnxruntime-node'],
  // CommonJS dependencies bundled into ES modules call require() for Node's built-ins.
  banner: {
    js: "import { createRequire as swarmbeeCreateRequire } from 'node:module'; const require = swarmbeeCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
