import { spawn } from 'node:child_process';
import { freePort } from '../../../local/ports.js';

/**
 * moto_server (moto 5, on PATH on these machines) for the services no emulator of the local stack plays:
 * Athena's API (query state and results, not SQL: DuckDB runs the SQL locally) and Secrets Manager.
 */
export interface RunningMoto {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<RunningMoto> {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; ; attempt += 1) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 150 || child.exitCode !== null) throw new Error('moto_server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    endpoint,
    async stop() {
      if (child.exitCode !== null) return;
      // moto's server catches SIGTERM and may wait for idle keep-alive connections: give it a moment, then kill.
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(killer);
    },
  };
}
