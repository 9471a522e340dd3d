import { DEFAULT_SPIN_DURATION_US, stageSessionOptions } from '@swarmbee/engine';
import t from 'tap';

function intraOp(options: Parameters<typeof stageSessionOptions>[1]): unknown {
  const extra = stageSessionOptions('/models', options).extra as {
    session: { intra_op: unknown };
  };
  return extra.session.intra_op;
}

t.test('spinning is bounded by spinDurationUs, and off unless asked for', async (t) => {
  t.same(intraOp({}), { allow_spinning: '0' }, 'off when not asked for');
  t.same(intraOp({ allowSpinning: true }), { allow_spinning: '1' }, "onnxruntime's own bound");
  t.same(
    intraOp({ allowSpinning: true, spinDurationUs: DEFAULT_SPIN_DURATION_US }),
    { allow_spinning: '1', spin_duration_us: '20' },
    'bounded',
  );
  t.same(intraOp({ allowSpinning: false, spinDurationUs: 20 }), { allow_spinning: '0' });
});

t.test('BAD OPTION - a spin duration that is not whole microseconds', async (t) => {
  for (const spinDurationUs of [-1, 2.5, Number.NaN])
    t.throws(() => stageSessionOptions('/models', { allowSpinning: true, spinDurationUs }), {
      code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
    });
});
