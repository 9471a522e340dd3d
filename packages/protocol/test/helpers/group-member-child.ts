/**
 * A tensor-group member in a process of its own, for tests that kill one: it serves a
 * data-plane server (group links to its hub), reports its URL, joins the group it is sent,
 * and sums each vector it is sent, reporting the sum, over IPC.
 */
import { DataPlaneAllReduce, GroupHub, listen, type TensorGroup } from '@swarmbee/protocol';

type Command = { cmd: 'join'; group: TensorGroup; rank: number } | { cmd: 'sum'; values: number[] };

const token = process.env.SWARMBEE_TEST_TOKEN ?? '';
const hub = new GroupHub();
const server = await listen({ token, host: '127.0.0.1', port: 0 }, (channel) => {
  if (channel.plane !== 'data') return;
  channel.on('message', (message) => void hub.route(channel, message));
});
let member: DataPlaneAllReduce | undefined;

process.on('message', (command: Command) => {
  const run = async () => {
    if (command.cmd === 'join') {
      member = await DataPlaneAllReduce.join({ ...command, token, hub });
      return { joined: true };
    }
    const sum = await member!.sum(Float32Array.from(command.values));
    return { sum: [...sum] };
  };
  run().then(
    (reply) => process.send?.(reply),
    (error: { code?: string }) => process.send?.({ error: error.code }),
  );
});
process.on('disconnect', () => {
  void member?.close();
  void server.close();
});
process.send?.({ url: server.url });
