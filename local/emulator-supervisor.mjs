// Runs one emulator (Java or Node alike) and ties its life to the local stack's.
// Usage: node emulator-supervisor.mjs <graceMs> <command> [args…]
//
// The stack holds the write end of this process's stdin. The kernel closes it however the stack ends,
// even on SIGKILL, so end-of-file here means "stop": the emulator gets SIGTERM, then SIGKILL after graceMs.
// The first line on stdout is the emulator's pid; its stderr is relayed to ours; our exit code mirrors its.
// Plain JavaScript, so that it starts in milliseconds without a TypeScript loader.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import process from 'node:process';
import { setTimeout } from 'node:timers';

const [graceMs, command, ...args] = process.argv.slice(2);
const emulator = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
process.stdout.write(`${emulator.pid}\n`);
// Relayed rather than shared: once the stack is gone, a write to its pipe fails here (and is dropped) instead
// of in the emulator, which would crash on it in the middle of saving its state (kinesis-local does).
emulator.stderr.on('data', (chunk) => process.stderr.write(chunk));

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  emulator.kill('SIGTERM');
  setTimeout(() => emulator.kill('SIGKILL'), Number(graceMs)).unref();
}

process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, stop);
// The stack may be gone: a write to its pipes must not end us before the emulator.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

emulator.on('error', (error) => {
  process.stderr.write(`cannot start ${command}: ${error.message}\n`);
  process.exit(127);
});
emulator.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
