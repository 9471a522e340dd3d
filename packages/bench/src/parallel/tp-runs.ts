/**
 * The runs of the `tp` part of `npm run bench -- parallel`: one greedy stream of the 110M
 * preset decoded by `swarmbee worker` processes on loopback under a given plan — one device,
 * a pipeline of two, tensor-parallel groups of two and four — on emulated slow devices behind
 * shaped links, and unemulated on pinned cores. Every plan of one setup is measured in each
 * round, rounds alternating, so machine noise falls on all of them alike.
 */
import { join } from 'node:path';
import { postJson } from '@swarmbee/coordinator';
import type { Plan, StagePlan } from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import { cacheRoot, type ModelDir } from '@swarmbee/model';
import type { SuiteContext } from '../suite.js';

/** A link between two emulated devices, as the worker's shaping flags take it. */
export interface BenchLink {
  label: string;
  delayMs: number;
  mbit: number;
  /** The planner's scenario of four such devices (`swarmbee plan --preset`). */
  scenario: string;
  /**
   * Where a group's LM head runs, as the planner chooses for this link: split by vocabulary
   * (a sum of 128 KB per token) where the link is fast, on the leader where it is not.
   */
  head: 'leader' | 'split';
}

/** The two edge links. */
export const TP_LINKS: readonly BenchLink[] = [
  { label: '1 Gbit/s + 0.2 ms', delayMs: 0.2, mbit: 1000, scenario: 'tp-x4-1gbit', head: 'split' },
  { label: '100 Mbit/s + 2 ms', delayMs: 2, mbit: 100, scenario: 'tp-x4-100mbit', head: 'leader' },
];

/** The emulated devices' speed: a quarter of one core of this machine (a Pi-class board). */
export const TP_DEVICE_SPEED = 0.25;

/** One way of running the model: its workers and the plan over them. */
export interface TpLayout {
  label: string;
  workers: number;
  plan: (model: ModelDir) => Plan;
}

/** One setup the layouts are measured in: emulated devices and a link, or bare pinned cores. */
export interface TpSetup {
  label: string;
  /** Emulated device speed (1: none). */
  speed: number;
  link?: BenchLink;
  /** Each worker pinned to a core of its own (taskset). */
  pinned: boolean;
  layouts: readonly TpLayout[];
}

function stage(index: number, device: string, layerStart: number, layerEnd: number): StagePlan {
  return { index, device, layerStart, layerEnd };
}

function wholePlan(model: ModelDir, stages: StagePlan[]): Plan {
  const { modelHash } = model.manifest;
  return { modelHash, nLayers: model.manifest.config.nLayers, stages };
}

const worker = (i: number) => `worker-${i}`;

/** All layers on one device. */
export const ONE_DEVICE: TpLayout = {
  label: 'one device',
  workers: 1,
  plan: (model) => wholePlan(model, [stage(0, worker(0), 0, model.manifest.config.nLayers)]),
};

/** Two stages, half the layers each. */
export const PIPELINE_2: TpLayout = {
  label: 'PP2',
  workers: 2,
  plan: (model) => {
    const n = model.manifest.config.nLayers;
    const half = Math.ceil(n / 2);
    return wholePlan(model, [stage(0, worker(0), 0, half), stage(1, worker(1), half, n)]);
  },
};

/**
 * One stage run by `k` devices, split evenly, its LM head where `head` says. Two members
 * exchange their partials (a ring of two: one crossing); more sum at the leader (star), which
 * the cost model predicts faster at these sizes and links (the `allreduce` part measures both).
 */
export function tensorGroup(k: number, head: 'leader' | 'split'): TpLayout {
  const devices = Array.from({ length: k }, (_, i) => worker(i));
  return {
    label: `TP${k}`,
    workers: k,
    plan: (model) =>
      wholePlan(model, [
        {
          ...stage(0, worker(0), 0, model.manifest.config.nLayers),
          tensor: {
            devices,
            weights: devices.map(() => 1),
            allReduce: k === 2 ? 'ring' : 'star',
            head,
          },
        },
      ]),
  };
}

/**
 * The setups of a run: bare pinned cores first (their one device is the core the planner's
 * predictions are calibrated to), then emulated devices behind each link.
 */
export function tpSetups(): TpSetup[] {
  return [
    {
      label: 'unemulated, pinned cores',
      speed: 1,
      pinned: true,
      layouts: [ONE_DEVICE, tensorGroup(2, 'split')],
    },
    ...TP_LINKS.map((link) => ({
      label: `speed ${TP_DEVICE_SPEED}, ${link.label}`,
      speed: TP_DEVICE_SPEED,
      link,
      pinned: false,
      layouts: [ONE_DEVICE, PIPELINE_2, tensorGroup(2, link.head), tensorGroup(4, link.head)],
    })),
  ];
}

/** One decode of one stream: ms per token after the first, and the ids. */
export interface StreamRun {
  msPerToken: number;
  ids: number[];
}

/** What one setup measured: per layout, one run per round, and the ids of its warm-up. */
export interface SetupRuns {
  setup: TpSetup;
  runs: Map<string, StreamRun[]>;
  warmIds: Map<string, number[]>;
}

/** One greedy stream of `tokens` tokens from BOS over the cluster's API. */
export async function decodeStream(cluster: LocalCluster, tokens: number): Promise<StreamRun> {
  const json = await postJson<{
    choices: { token_ids?: number[] }[];
    usage: { completion_tokens: number };
    timings: { first_token_ms: number; total_ms: number };
  }>({ url: cluster.apiUrl }, '/v1/completions', {
    prompt: [1],
    max_tokens: tokens,
    temperature: 0,
    ignore_eos: true,
  });
  const decoded = json.usage.completion_tokens - 1;
  if (decoded < 1) throw new Error('the stream decoded no token after the first');
  return {
    msPerToken: (json.timings.total_ms - json.timings.first_token_ms) / decoded,
    ids: json.choices[0]?.token_ids ?? [],
  };
}

function workerArgs(setup: TpSetup): string[] {
  return [
    ...(setup.speed < 1 ? ['--speed-factor', String(setup.speed), '--speed-basis', 'cpu'] : []),
    ...(setup.link
      ? [
          '--link-delay-ms',
          String(setup.link.delayMs),
          '--link-bandwidth-mbit',
          String(setup.link.mbit),
        ]
      : []),
  ];
}

/** Starts a cluster per layout of `setup`, then measures them in alternating rounds. */
export async function measureSetup(
  context: SuiteContext,
  model: ModelDir,
  setup: TpSetup,
  options: { tokens: number; rounds: number },
): Promise<SetupRuns> {
  const clusters = new Map<string, LocalCluster>();
  const result: SetupRuns = { setup, runs: new Map(), warmIds: new Map() };
  try {
    for (const layout of setup.layouts) {
      context.progress(`parallel tp: ${setup.label}: starting ${layout.label}`);
      const cluster = await LocalCluster.start({
        model,
        workers: layout.workers,
        cliBin: context.cliBin,
        cacheDir: join(cacheRoot(), 'bench', 'parallel-tp', layout.label),
        threads: 1,
        pinCores: setup.pinned,
        workerOutput: 'ignore',
        workerArgs: () => workerArgs(setup),
        coordinator: { plan: layout.plan(model) },
      });
      clusters.set(layout.label, cluster);
      // Warm-up, excluded (twice: the first runs before the code on the path is compiled);
      // its ids are the layout's greedy ids.
      await decodeStream(cluster, options.tokens);
      result.warmIds.set(layout.label, (await decodeStream(cluster, options.tokens)).ids);
      result.runs.set(layout.label, []);
    }
    for (let round = 0; round < options.rounds; round++) {
      context.progress(`parallel tp: ${setup.label}: round ${round + 1}/${options.rounds}`);
      for (const layout of setup.layouts) {
        const run = await decodeStream(clusters.get(layout.label)!, options.tokens);
        result.runs.get(layout.label)!.push(run);
      }
    }
    return result;
  } finally {
    await Promise.allSettled([...clusters.values()].map((c) => c.stop()));
  }
}
