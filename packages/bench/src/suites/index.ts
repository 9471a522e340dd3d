import type { Suite } from '../suite.js';
import { chaosSuite } from './chaos.js';
import { driftSuite } from './drift.js';
import { engineSuite } from './engine.js';
import { finetuneSuite } from './finetune.js';
import { ggufSuite } from './gguf.js';
import { optimizeSuite } from './optimize.js';
import { parallelSuite } from './parallel.js';
import { pipelineSuite } from './pipeline.js';
import { plannerSuite } from './planner.js';
import { scaleSuite } from './scale.js';
import { soakSuite } from './soak.js';
import { soakFaultsSuite } from './soak-faults.js';

/** The repository's own benchmark suites, by name (`npm run bench -- <name>`). */
export const SUITES: Record<string, Suite> = {
  chaos: chaosSuite,
  drift: driftSuite,
  engine: engineSuite,
  finetune: finetuneSuite,
  gguf: ggufSuite,
  optimize: optimizeSuite,
  parallel: parallelSuite,
  pipeline: pipelineSuite,
  planner: plannerSuite,
  scale: scaleSuite,
  soak: soakSuite,
  'soak-faults': soakFaultsSuite,
};
