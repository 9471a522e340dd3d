/** The device facts a worker registers with: its execution provider among them, on the wire. */
import { decode, encode, type Message } from '@swarmbee/protocol';
import t from 'tap';
import { deviceFacts } from '../src/device.js';

t.test('a worker registers with the execution provider its stages run on', async (t) => {
  t.equal(deviceFacts().executionProvider, 'cpu', 'cpu by default');
  const facts = deviceFacts('cuda');
  t.equal(facts.executionProvider, 'cuda');
  const register: Message = {
    type: 'register',
    name: 'w',
    device: facts,
    dataUrl: 'ws://127.0.0.1:7701',
    cachedShards: [],
  };
  t.same(decode(encode(register)), register, 'the register message carries it through the codec');
});
