// bench/udp-floor: the CPU one UDP packet costs the kernel on this machine, with nothing
// else, to set the SFU's packets per CPU-second against. The SFU (libdatachannel under
// node-datachannel) sends every RTP packet with its own sendto on the shared mux socket,
// so this is a ceiling for any server built on it here. Compiles udp-floor.c with the
// machine's C compiler; the sender gets CPU 0 and the receiving process CPU 1, as in
// bench/sfu.
//
//   npm run bench:udp-floor -- [--sockets 200] [--pps 50000] [--seconds 5] [--size 1128]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '200' },
    pps: { type: 'string', default: '50000' },
    seconds: { type: 'string', default: '5' },
    // An SRTP packet of the SFU bench's video: 1,100 bytes of RTP plus the auth tag.
    size: { type: 'string', default: '1128' },
  },
});

const bin = join(mkdtempSync(join(os.tmpdir(), 'udp-floor-')), 'udp-floor');
execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', bin, new URL('./udp-floor.c', import.meta.url).pathname]);
const pinned = os.cpus().length > 1;
const onCpu = (cpu: number, args: string[]): [string, string[]] =>
  pinned ? ['taskset', ['-c', String(cpu), bin, ...args]] : [bin, args];

async function run(mode: 'sendto' | 'sendmmsg', basePort: number): Promise<Record<string, unknown>> {
  const receiver = spawn(...onCpu(1, ['recv', values.sockets, String(basePort)]));
  const lines = createInterface({ input: receiver.stdout });
  const it = lines[Symbol.asyncIterator]();
  if ((await it.next()).value !== 'ready') throw new Error('receiver did not start');
  const out = execFileSync(
    ...onCpu(0, ['send', values.sockets, String(basePort), values.pps, values.seconds, values.size, mode]),
  ).toString();
  const sent = JSON.parse(out) as { sent: number; userSeconds: number; systemSeconds: number };
  const received = JSON.parse(String((await it.next()).value)) as { received: number };
  receiver.kill();
  const cpu = sent.userSeconds + sent.systemSeconds;
  return {
    mode,
    sockets: Number(values.sockets),
    packetBytes: Number(values.size),
    packetsPerSecond: Math.round(sent.sent / Number(values.seconds)),
    senderCpuPercent: Math.round((cpu / Number(values.seconds)) * 100),
    microsecondsPerPacket: Number(((cpu / sent.sent) * 1e6).toFixed(2)),
    packetsPerCpuSecond: Math.round(sent.sent / cpu),
    received: received.received,
    sent: sent.sent,
  };
}

console.log(
  JSON.stringify({
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: os.release(),
    pinned,
  }),
);
console.log(JSON.stringify(await run('sendto', 41000)));
console.log(JSON.stringify(await run('sendmmsg', 41000 + Number(values.sockets) + 10)));
