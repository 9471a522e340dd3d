import { hostname } from 'node:os';
import t from 'tap';
import { reachableHost } from '../src/advertise.js';

const lo = { address: '127.0.0.1', family: 'IPv4', internal: true } as const;
const v6 = { address: 'fe80::1', family: 'IPv6', internal: false } as const;
const lan = { address: '192.168.1.23', family: 'IPv4', internal: false } as const;
const common = { netmask: '', mac: '', cidr: null };

t.test('a concrete listen host is advertised as is', async (t) => {
  t.equal(reachableHost('127.0.0.1', {}), '127.0.0.1');
  t.equal(reachableHost('pi-3.local', {}), 'pi-3.local');
});

t.test("a wildcard listen host advertises the machine's first external IPv4", async (t) => {
  const interfaces = {
    lo: [{ ...lo, ...common }],
    eth0: [
      { ...v6, ...common, scopeid: 2 },
      { ...lan, ...common },
    ],
  };
  t.equal(reachableHost('0.0.0.0', interfaces), '192.168.1.23');
  t.equal(reachableHost('::', interfaces), '192.168.1.23');
  t.equal(
    reachableHost('0.0.0.0', { lo: [{ ...lo, ...common }] }),
    hostname(),
    'else the hostname',
  );
});
