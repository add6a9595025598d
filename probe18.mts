import { createHash, hash } from 'node:crypto';
const ids = Array.from({ length: 300_000 }, (_, i) => `${1 + ((i * 2654435761) % 1_000_000)}`);
function bench(name: string, f: (s: string) => number) {
  let x = 0;
  for (const id of ids.slice(0, 20000)) x += f(id);
  const t = performance.now();
  for (const id of ids) x += f(id);
  console.log(name, ((performance.now() - t) * 1000 / ids.length).toFixed(2), 'µs', x > 0);
}
for (let r = 0; r < 2; r++) {
bench('createHash sha256', (s) => { const d = createHash('sha256').update(s, 'utf8').digest(); return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4); });
bench('createHash md5', (s) => { const d = createHash('md5').update(s, 'utf8').digest(); return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4); });
bench('hash sha256 buffer', (s) => { const d = hash('sha256', s, 'buffer'); return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4); });
bench('hash md5 buffer', (s) => { const d = hash('md5', s, 'buffer'); return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4); });
bench('hash sha256 hex', (s) => parseInt(hash('sha256', s, 'hex').slice(0, 13), 16));
}
console.log(process.version);
