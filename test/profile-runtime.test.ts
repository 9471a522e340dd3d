/**
 * A cluster profile names the runtime each worker measured with, as the worker reported it
 * when it joined: onnxruntime runs on the workers, so the coordinator (which no longer loads
 * onnxruntime-node) has no version of its own to report.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterProfile } from '@swarmbee/core';
import ort from 'onnxruntime-node';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test("swarmbee profile reports each worker's node and onnxruntime versions", async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const c = await startCluster({ model, workers: 1, root });
  t.teardown(() => c.stop());
  const out = join(root, 'profile.json');
  const result = await runCli(['profile', '--url', c.apiUrl, '--out', out], {
    env: { SWARMBEE_TOKEN: c.token },
    timeoutMs: 120_000,
  });
  t.equal(result.code, 0, result.stderr);
  const profile = JSON.parse(await readFile(out, 'utf8')) as ClusterProfile;
  const runtime = { node: process.version, onnxruntime: ort.env.versions.node };
  t.same(
    profile.devices.map((d) => [d.name, d.runtime]),
    [['worker-0', runtime]],
    'the worker process measured with this node and onnxruntime',
  );
  t.notOk('onnxruntime' in profile.versions, 'no coordinator-side onnxruntime version');
  t.match(
    result.stdout,
    `node ${runtime.node}, onnxruntime ${runtime.onnxruntime}`,
    'the table shows it',
  );
});
