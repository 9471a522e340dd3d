/** The parallel suite's plan part: the planner's predictions and choices on the benchmark scenarios. */
import t from 'tap';
import { planPart } from '../src/parallel/plan-part.js';

t.test('layouts predicted, choices per scenario and objective, checks that pass', async (t) => {
  const lines: string[] = [];
  const part = planPart({
    quick: true,
    progress: (line) => lines.push(line),
    command: 'test',
    cliBin: 'unused',
  });
  t.equal(lines.length, 1);
  const [layouts, choices] = part.tables;
  t.same(
    layouts!.rows.map((r) => `${r[0]} ${r[1]}`),
    ['tp-x4-1gbit', 'tp-x4-100mbit'].flatMap((s) =>
      ['one device', 'PP2', 'TP2', 'TP4'].map((l) => `${s} ${l}`),
    ),
  );
  const ratio = (scenario: string, layout: string) =>
    Number(layouts!.rows.find((r) => r[0] === scenario && r[1] === layout)![3]);
  t.ok(ratio('tp-x4-1gbit', 'TP4') < ratio('tp-x4-1gbit', 'TP2'), 'fast links: TP4 beats TP2');
  t.ok(ratio('tp-x4-1gbit', 'TP2') < 1, 'fast links: TP2 beats one device');
  t.ok(ratio('tp-x4-100mbit', 'TP4') > 1, 'slow links: TP4 costs more than one device');
  t.equal(choices!.rows.length, 4 * 2 * 3, '4 scenarios × 2 objectives × 3 parallelisms');
  t.ok(
    part.checks.every((c) => c.pass),
    part.checks.map((c) => `${c.name}: ${c.value}`).join('; '),
  );
  t.ok(part.metrics['plan.tp-x4-1gbit.TP4.msPerToken'], 'a metric per scenario and layout');
});
