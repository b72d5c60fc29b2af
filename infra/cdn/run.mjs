// Runs viewer-request.js under Node as CloudFront would, for tests/tests/cdn.rs: CloudFront
// Functions are not Node modules (no export; `cloudfront` is the runtime's own module), so the
// code is evaluated in a fresh context whose `cf.kvs()` is a stand-in for the key value store.
//
// stdin: a JSON array of cases {"kvs": {host: vaultId}, "event": <viewer-request event>};
// stdout: a JSON array of what the handler returned for each, plus, for a returned request,
// `queryOrder`: its query parameter names in order, which CloudFront forwards as they stand and
// which a JSON object read back in Rust would not keep.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const source = readFileSync(new URL('./viewer-request.js', import.meta.url), 'utf8');
const importLine = "import cf from 'cloudfront';";
if (!source.includes(importLine)) {
    throw new Error(`viewer-request.js lacks ${importLine}`);
}
const script = new vm.Script(`${source.replace(importLine, '')}\nhandler;`, {
    filename: 'viewer-request.js',
});

function storeOf(entries) {
    return {
        // As the runtime's get(): a string for a stored key, a rejection for a missing one.
        async get(key) {
            if (Object.prototype.hasOwnProperty.call(entries, key)) {
                return entries[key];
            }
            throw new Error(`KeyNotFound: ${key}`);
        },
    };
}

const cases = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const c of cases) {
    const cf = { kvs: () => storeOf(c.kvs || {}) };
    const handler = script.runInNewContext({ cf, console });
    const result = await handler(c.event);
    if (result.querystring) {
        result.queryOrder = Object.keys(result.querystring);
    }
    results.push(result);
}
process.stdout.write(JSON.stringify(results));
