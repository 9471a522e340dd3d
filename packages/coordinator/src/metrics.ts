/**
 * Prometheus metrics of the coordinator (one registry per coordinator, so that
 * tests and several coordinators in one process never share counters).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Completion } from './generation-service.js';

/** What each stage reports; the coordinator polls its workers for it. */
export interface StageMetrics {
  stage: number;
  device: string;
  forwards: number;
  forwardMsTotal: number;
  /** Engine time of every forward so far, KV cache included, ms (0 from workers that do not report it). */
  busyMsTotal: number;
  /** Micro-batches waiting at the stage. */
  queueDepth: number;
  bytesSent: number;
  /** Share of wall time the stage's engine sat idle since it loaded, 0..1. */
  idleShare: number;
}

export interface MetricsSources {
  queued: () => number;
  active: () => number;
  inFlight: () => number;
  stages: () => StageMetrics[];
  /** Deployments replaced so far (recoveries, returns, re-plans). Default: none reported. */
  recoveries?: () => number;
  /** Unhandled rejections and uncaught exceptions the process survived. Default: none reported. */
  processFaults?: () => number;
  /** Each stage's measured / predicted time per forward in the last drift window. Default: none. */
  drift?: () => readonly { stage: number; device: string; ratio: number }[];
  /** Re-plans the drift monitor made. Default: none reported. */
  driftReplans?: () => number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint'>;
  readonly requestErrors: Counter<'code'>;
  readonly tokens: Counter;
  readonly firstToken: Histogram;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'swarmbee_requests_total',
      help: 'Completed API requests',
      labelNames: ['endpoint'],
      registers,
    });
    this.requestErrors = new Counter({
      name: 'swarmbee_request_errors_total',
      help: 'API requests answered with an error, by code',
      labelNames: ['code'],
      registers,
    });
    this.tokens = new Counter({
      name: 'swarmbee_generated_tokens_total',
      help: 'Tokens sampled for API requests',
      registers,
    });
    this.firstToken = new Histogram({
      name: 'swarmbee_time_to_first_token_seconds',
      help: 'From admission to the first sampled token',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('swarmbee_queue_depth', 'Requests waiting for a generation slot', sources.queued);
    gauge('swarmbee_active_sequences', 'Sequences being generated', sources.active);
    gauge('swarmbee_inflight_microbatches', 'Micro-batches in the pipeline', sources.inFlight);
    if (sources.recoveries)
      gauge(
        'swarmbee_recoveries',
        'Deployments replaced so far: recoveries from a lost worker, workers taken back, re-plans',
        sources.recoveries,
      );
    if (sources.processFaults)
      gauge(
        'swarmbee_process_faults',
        'Unhandled rejections and uncaught exceptions the coordinator process survived (each one a bug)',
        sources.processFaults,
      );
    const perStage = (name: string, help: string, read: (s: StageMetrics) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['stage', 'device'],
        registers,
        collect() {
          this.reset();
          for (const s of sources.stages())
            this.set({ stage: String(s.stage), device: s.device }, read(s));
        },
      });
    perStage(
      'swarmbee_stage_forward_seconds_total',
      'Time the stage spent in forward passes',
      (s) => s.forwardMsTotal / 1000,
    );
    perStage('swarmbee_stage_forwards_total', 'Forward passes the stage ran', (s) => s.forwards);
    perStage(
      'swarmbee_stage_queue_depth',
      'Micro-batches waiting at the stage',
      (s) => s.queueDepth,
    );
    perStage(
      'swarmbee_stage_bytes_sent_total',
      'Bytes the stage sent downstream',
      (s) => s.bytesSent,
    );
    perStage('swarmbee_stage_idle_ratio', 'Share of time the stage sat idle', (s) => s.idleShare);
    const { drift, driftReplans } = sources;
    if (drift)
      new Gauge({
        name: 'swarmbee_stage_drift_ratio',
        help: "Stage's measured engine time per forward over the cost model's prediction, last window (1 = on prediction)",
        labelNames: ['stage', 'device'],
        registers,
        collect() {
          this.reset();
          for (const d of drift()) this.set({ stage: String(d.stage), device: d.device }, d.ratio);
        },
      });
    if (driftReplans)
      gauge(
        'swarmbee_drift_replans',
        'Re-plans made because stages drifted from their prediction',
        driftReplans,
      );
  }

  observe(endpoint: string, completion: Completion): void {
    this.requests.inc({ endpoint });
    this.tokens.inc(completion.completionTokens);
    this.firstToken.observe(completion.firstTokenMs / 1000);
  }
}
