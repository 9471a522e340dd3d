/**
 * The progress of a fine-tuning run on stderr: a bar with the step, the loss, training
 * tokens/s and the time left on a terminal; otherwise a line every tenth of the run and
 * at each checkpoint.
 */
import type { FinetuneEvent } from '@swarmbee/train';
import cliProgress from 'cli-progress';

/** Weight of the newest step in the smoothed loss and step time. */
const SMOOTHING = 0.1;

export interface TrainingProgress {
  report(event: FinetuneEvent): void;
  stop(): void;
}

export function trainingProgress(stream: NodeJS.WriteStream = process.stderr): TrainingProgress {
  const bar = stream.isTTY
    ? new cliProgress.SingleBar(
        {
          stream,
          format:
            'step {value}/{total} [{bar}] loss {loss} (last 10 steps) | {tps} tok/s | {eta_formatted} left',
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let loss: number | undefined;
  let tokensPerSecond: number | undefined;
  let started = false;
  const line = (text: string) => {
    if (bar) bar.stop();
    stream.write(`${text}\n`);
    started = false;
  };
  return {
    report(event) {
      switch (event.type) {
        case 'start':
          stream.write(
            `training ${event.examples} records, ${event.batchSize} per step, from step ${event.step} to ${event.totalSteps}\n`,
          );
          if (bar) {
            bar.start(event.totalSteps, event.step, { loss: '-', tps: '-' });
            started = true;
          }
          return;
        case 'step': {
          const tps = event.tokens / (event.stepMs / 1000);
          loss = loss === undefined ? event.loss : loss + SMOOTHING * (event.loss - loss);
          tokensPerSecond =
            tokensPerSecond === undefined
              ? tps
              : tokensPerSecond + SMOOTHING * (tps - tokensPerSecond);
          const values = { loss: loss.toFixed(4), tps: tokensPerSecond.toFixed(0) };
          if (bar) {
            if (!started) {
              bar.start(event.totalSteps, event.step, values);
              started = true;
            } else bar.update(event.step, values);
          } else if (event.step % Math.max(1, Math.round(event.totalSteps / 10)) === 0) {
            stream.write(
              `step ${event.step}/${event.totalSteps}: loss ${event.loss.toFixed(4)} (last 10 steps ${values.loss}), ${values.tps} tok/s, lr ${event.learningRate.toExponential(2)}\n`,
            );
          }
          return;
        }
        case 'checkpoint':
          line(`checkpoint after step ${event.step}: ${event.path}`);
          return;
        case 'recover':
          line(
            `the pipeline failed (${event.code}: ${event.message}); going on from step ${event.step} on the new deployment (${event.lostSteps} step${event.lostSteps === 1 ? '' : 's'} lost)`,
          );
          return;
        case 'eval':
          line(
            `eval after step ${event.step} on ${event.data}: loss ${event.loss.toFixed(4)}, perplexity ${event.perplexity.toFixed(3)} over ${event.targetTokens} tokens`,
          );
          return;
      }
    },
    stop() {
      if (bar && started) bar.stop();
    },
  };
}
