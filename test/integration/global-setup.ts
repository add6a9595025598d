/** Placeholder until the local stack lands: the integration project starts the emulators here. */
export default function setup(): void {}
