/**
 * Fuzz a running cluster: more than 10,000 random and mutated frames at a worker's
 * data port and at the coordinator's control and data planes, each from an
 * authenticated peer. Every frame that is not a valid message must be answered with
 * a coded error or a close, nothing may hang, and afterwards the cluster still
 * serves the reference text. Seeded (FUZZ_SEED) so a failure can be replayed.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { decode, type MessagePlane, type Role } from '@swarmbee/protocol';
import { type ServingEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t from 'tap';
import { exchange, makeFuzzer } from '../packages/protocol/test/helpers/fuzz.js';
import { rawHandshake, within } from '../packages/protocol/test/helpers/net.js';
import { importStories260k } from './helpers/cli.js';
import { complete, startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const FRAMES_PER_TARGET = 3_400;
const PARALLEL = 4;
const BUDGET_MS = 240_000;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

interface Target {
  name: string;
  url: string;
  role: Role;
  plane: MessagePlane;
}

function isValid(frame: Buffer | string, plane: MessagePlane): boolean {
  if (typeof frame === 'string') return false;
  try {
    decode(frame, { plane });
    return true;
  } catch {
    return false;
  }
}

t.test(
  `FUZZ - ${3 * FRAMES_PER_TARGET} frames at a worker and the coordinator (seed ${seed})`,
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startCluster({
      model,
      workers: 1,
      root,
    });
    t.teardown(() => cluster.stop());
    const { dataUrl: workerUrl } = await cluster.workers[0]!.waitForEvent<ServingEvent>(
      WORKER_EVENTS.serving,
    );
    const targets: Target[] = [
      { name: 'worker data plane', url: workerUrl, role: 'coordinator', plane: 'data' },
      {
        name: 'coordinator control plane',
        url: cluster.workersUrl,
        role: 'worker',
        plane: 'control',
      },
      { name: 'coordinator data plane', url: cluster.workersUrl, role: 'stage', plane: 'data' },
    ];
    const fuzzer = makeFuzzer(seed);
    const deadline = Date.now() + BUDGET_MS;
    for (const target of targets) {
      const counts = { refusedWithError: 0, closed: 0, valid: 0 };
      let next = 0;
      const lane = async () => {
        while (next < FRAMES_PER_TARGET && Date.now() < deadline) {
          next++;
          const frame = fuzzer.frame();
          const peer = await rawHandshake(t, target.url, {
            token: cluster.token,
            role: target.role,
            name: `fuzz-${next}`,
          });
          if (isValid(frame, target.plane)) {
            // A frame that happens to be a valid message is served as such; nothing to judge.
            peer.ws.send(frame);
            counts.valid++;
          } else {
            const outcome = await exchange(peer.ws, frame);
            if (outcome === 'accepted') t.fail(`${target.name} accepted an invalid frame`);
            else if (outcome === 'error') counts.refusedWithError++;
            else counts.closed++;
          }
          peer.ws.terminate();
          await within(
            once(peer.ws, 'close').catch(() => {}),
            2_000,
            'close',
          ).catch(() => {});
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, lane));
      t.comment(`${target.name}: ${JSON.stringify(counts)}`);
      t.equal(
        counts.refusedWithError + counts.closed + counts.valid,
        FRAMES_PER_TARGET,
        `${target.name}: every frame judged within the time budget`,
      );
      t.ok(counts.refusedWithError > counts.closed, `${target.name}: refusals carry a coded error`);
    }
    t.equal(cluster.coordinator.child.exitCode, null, 'the coordinator is still running');
    t.equal(cluster.workers[0]!.child.exitCode, null, 'the worker is still running');
    const after = await complete(cluster.apiUrl, {
      prompt: 'Once upon a time',
      steps: 64,
      temperature: 0,
      echo: true,
    });
    t.equal(
      `${after.json.choices[0].text}\n`,
      await readFile(STORIES260K.refOnceUponATime, 'utf8'),
      'the cluster still serves the reference text',
    );
  },
);
