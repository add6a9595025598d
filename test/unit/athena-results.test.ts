import { describe, expect, it } from 'vitest';
import { csvRecords, viewRowsFromCsv, type CsvField } from '../../shared/batch/athena-results.js';
import { fromHashes } from '../../shared/sketch/index.js';

/** The text in pieces cut at the given offsets (as bytes, so a cut can fall inside a UTF-8 character). */
async function* inPieces(text: string, cuts: readonly number[]): AsyncGenerator<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    yield bytes.subarray(start, cut);
    start = cut;
  }
}

async function records(text: string, cuts: readonly number[] = []): Promise<CsvField[][]> {
  const all: CsvField[][] = [];
  for await (const chunk of csvRecords(inPieces(text, cuts), 2)) all.push(...chunk);
  return all;
}

describe("Athena's result CSV", () => {
  const text =
    '"site","bucket_ms","dimension","value","views","errors","sketch_form","sketch"\n' +
    '"a.example","1764072000000","url","https://a.example/?q=""x"",y","3","1","sparse","[5, 9]"\n' +
    '"a.example","1764072000000","country","","2","0",,\r\n' +
    '"b.example","1764072000000","url","https://é.example/\u{1F600}","1","0",,\n';

  it('reads quoted fields, doubled quotes, commas inside quotes, CRLF, and NULL as an unquoted empty field', async () => {
    expect(await records(text)).toEqual([
      ['site', 'bucket_ms', 'dimension', 'value', 'views', 'errors', 'sketch_form', 'sketch'],
      ['a.example', '1764072000000', 'url', 'https://a.example/?q="x",y', '3', '1', 'sparse', '[5, 9]'],
      ['a.example', '1764072000000', 'country', '', '2', '0', null, null],
      ['b.example', '1764072000000', 'url', 'https://é.example/\u{1F600}', '1', '0', null, null],
    ]);
  });

  it('gives the same records wherever the stream is cut: inside quotes, between doubled quotes, inside a character', async () => {
    const whole = await records(text);
    const bytes = new TextEncoder().encode(text).length;
    for (let cut = 1; cut < bytes; cut += 1) expect(await records(text, [cut])).toEqual(whole);
    expect(await records(text, [3, 90, 91, 92, 150, 151, 152, 153])).toEqual(whole);
  });

  it('turns rows into view rows, with visitor sketches where the query gave them', async () => {
    const rows = [];
    for await (const chunk of viewRowsFromCsv(inPieces(text, [100]))) rows.push(...chunk);
    expect(rows).toEqual([
      {
        site: 'a.example',
        bucketMs: 1764072000000,
        dimension: 'url',
        value: 'https://a.example/?q="x",y',
        views: 3,
        errors: 1,
        visitors: fromHashes([5, 9]),
      },
      { site: 'a.example', bucketMs: 1764072000000, dimension: 'country', value: '', views: 2, errors: 0 },
      {
        site: 'b.example',
        bucketMs: 1764072000000,
        dimension: 'url',
        value: 'https://é.example/\u{1F600}',
        views: 1,
        errors: 0,
      },
    ]);
  });

  it('refuses a result whose columns are not the view query’s, and a file cut inside a quoted field', async () => {
    const rows = async (csv: string) => {
      for await (const _ of viewRowsFromCsv(inPieces(csv, []))) void _;
    };
    await expect(rows('"a","b"\n"1","2"\n')).rejects.toThrow('unexpected result columns');
    await expect(records('"a","b\n')).rejects.toThrow('inside a quoted field');
  });
});
