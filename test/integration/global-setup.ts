import type { TestProject } from 'vitest/node';
import { startEmulators, type RunningEmulators } from '../../local/emulators.js';

/** Starts the emulators once per test run (or uses AWS_ENDPOINT_URL, e.g. LocalStack) and stops them after. */
let emulators: RunningEmulators | undefined;

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: {
      endpoints: { kinesis: string; dynamodb: string; s3: string };
      region: string;
      credentials: { accessKeyId: string; secretAccessKey: string };
      pids: number[];
      /** True on the emulators started here (kinesis-local…), false on AWS_ENDPOINT_URL (LocalStack, moto). */
      embedded: boolean;
    };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  emulators = await startEmulators({
    onCrash: (service, detail) =>
      process.stderr.write(`\n!! ${service} emulator crashed during the tests: ${detail}\n`),
  });
  project.provide('emulators', {
    endpoints: emulators.endpoints,
    region: emulators.region,
    credentials: emulators.credentials,
    pids: [...emulators.pids],
    embedded: emulators.embedded,
  });
  return async () => {
    await emulators?.stop();
  };
}
