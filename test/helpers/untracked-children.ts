/**
 * Loaded into every test process (`--import` in package.json's `tap.node-arg`): the
 * processes a test spawns (CLI, workers, stage processes) run without tap's processinfo
 * loader.
 *
 * tap's processinfo hooks every spawn to add its `--import` to the child's NODE_OPTIONS;
 * that loader sends each module the child loads through a loader thread, which made every
 * `swarmbee` process start in 1.5 s instead of 0.7 s (and ~1.2 s more CPU). It records which
 * files each process loaded, for coverage and `tap --changed`; this suite runs with
 * coverage disabled, so a child's record was never read. The test process itself keeps it.
 */
import processOnSpawn from 'process-on-spawn';

const PROCESSINFO_IMPORT = /(^|\s)"?--import=\S*@tapjs[\\/]processinfo\S*"?(?=\s|$)/g;

processOnSpawn.addListener((options) => {
  const nodeOptions = options.env.NODE_OPTIONS;
  if (nodeOptions === undefined) return;
  const stripped = nodeOptions.replace(PROCESSINFO_IMPORT, '').trim();
  if (stripped === '') delete options.env.NODE_OPTIONS;
  else options.env.NODE_OPTIONS = stripped;
});
