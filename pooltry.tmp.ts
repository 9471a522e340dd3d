import { TokenizerPool } from '@swarmbee/coordinator';
import { openModelDir } from '@swarmbee/model';
const dir = await openModelDir('/tmp/hapi/s260k');
for (const mib of [16, 24, 32, 48]) {
  try {
    const pool = await TokenizerPool.start(dir, { threads: 1, threadHeapMib: mib, log: console.log });
    const t0 = performance.now();
    const r = await pool.prepare({ prompt: { text: 'Once upon a time '.repeat(200_000) }, echo: false, maxIds: 512 }).then((p) => p.count, (e) => e.code);
    console.log(mib, 'big ->', r, (performance.now() - t0).toFixed(0), 'ms');
    console.log(mib, 'small ->', await pool.prepare({ prompt: { text: 'Once upon a time' }, echo: false, maxIds: 512 }).then((p) => p.count, (e) => e.code));
    await pool.close();
  } catch (e) { console.log(mib, 'start failed', (e as Error).message); }
}
