/**
 * The planner and the engine size KV alike: a stage deployed with the budget a plan gives
 * it admits exactly the sequences the plan keeps, each of the workload's full context —
 * not fewer, as when the plan charged `context` positions and the engine's arena rounds a
 * sequence up to its growth step.
 */
import { COORDINATOR_NODE, type DeviceProfile, type ModelSummary } from '@swarmbee/core';
import { KvAdmission } from '@swarmbee/engine';
import { plan } from '@swarmbee/planner';
import t from 'tap';

const KV_BYTES_PER_TOKEN = 64;

function model(maxSeqLen: number): ModelSummary {
  return {
    name: 'flat',
    modelHash: 'flat-hash',
    nLayers: 4,
    dim: 8,
    vocabSize: 32,
    maxSeqLen,
    weightBytesPerParam: 4,
    layers: Array.from({ length: 4 }, () => ({
      paramBytes: 1000,
      kvBytesPerToken: KV_BYTES_PER_TOKEN,
    })),
    embeddingBytes: 200,
    headBytes: 300,
    tiedEmbedding: false,
  };
}

function device(name: string, layerMs: number): DeviceProfile {
  const one = { batchSizes: [1], contextTokens: [0], ms: [[layerMs]] };
  const chunk = { chunkTokens: [1], contextTokens: [0], ms: [[layerMs]] };
  return {
    name,
    memoryBytes: 1e9,
    estimate: false,
    timing: {
      layers: [{ decode: one, prefill: chunk }],
      embedding: { decode: one, prefill: chunk },
      head: { decode: one },
    },
  };
}

t.test('a planned KV budget admits exactly the sequences the plan keeps', async (t) => {
  for (const contextTokens of [1000, 3000, 4096]) {
    const devices = [device('a', 1), device('b', 2)];
    const names = [COORDINATOR_NODE, 'a', 'b'];
    const links = names.flatMap((from, i) =>
      names.slice(i + 1).map((to) => ({ from, to, rttMs: 2, bandwidthBytesPerS: 1e6 })),
    );
    const result = plan(
      {
        cluster: {
          model: model(4096),
          devices,
          links,
          createdAt: '2025-01-01T00:00:00.000Z',
          versions: { swarmbee: 'test' },
        },
        workload: { contextTokens, promptTokens: 10, prefillChunkTokens: 4 },
      },
      { planner: 'dp', objective: 'throughput', microBatchCandidates: [2, 4] },
    );
    const sequences = result.microBatchSize * result.microBatchesInFlight;
    const admission = new KvAdmission(4096);
    admission.set(
      result.stages.map((s) => ({
        stage: s.index,
        maxSequences: 1_000,
        kvBudgetBytes: s.kvBudgetBytes ?? 0,
        kvBytesPerPosition: (s.layerEnd - s.layerStart) * KV_BYTES_PER_TOKEN,
      })),
    );
    const live = Array.from({ length: sequences - 1 }, () => contextTokens);
    t.ok(
      admission.fits(live, contextTokens),
      `context ${contextTokens}: the plan's ${sequences} sequences of full context fit`,
    );
    t.notOk(
      admission.fits([...live, contextTokens], contextTokens),
      `context ${contextTokens}: one more does not`,
    );
  }
});
