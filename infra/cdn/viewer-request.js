// imgbt's CDN: the viewer-request CloudFront Function (runtime cloudfront-js-2.0) in front of
// the delivery route. template.yaml carries this file inline, since CloudFront takes function
// code only inline; tests/tests/cdn.rs checks the two are the same and runs this code under Node.
//
// CloudFront computes the cache key after this function, from what it returns, so everything
// that must not split the cache (unknown parameters, their order, name case, aliases, the whole
// Accept header) is settled here, and the cache policy can key on every query parameter left.
import cf from 'cloudfront';

// Host name -> vault id, for vaults served on a host of their own. A key value store rather than
// a template parameter: imgbt gives every vault its own host, and the store is changed with one
// API call (no deploy, no new function version) as vaults are added.
const vaultHosts = cf.kvs();

// The transform parameters of issue 18 and the signature's two, by their canonical names.
const KNOWN = ['w', 'h', 'dpr', 'fit', 'format', 'quality', 'blur', 'sharpen', 'rotate', 'flip',
    'grayscale', 'crop', 'gravity', 'bg', 'exp', 'sig'];
const ALIASES = { f: 'format', q: 'quality', rt: 'rotate', g: 'gravity' };

// Where format=auto, the format the viewer's Accept allows travels as this parameter, so that the
// cache keys on three values instead of every browser's Accept string. A viewer cannot set it:
// it is not in KNOWN, so a sent one is dropped like any unknown parameter.
const NEGOTIATED = 'accept';

function canonicalName(raw) {
    const lower = raw.toLowerCase();
    return ALIASES[lower] || lower;
}

// Picks the known parameters under their canonical names. When a URL names one parameter twice
// (w and W, or q and quality), the canonical spelling wins, then the first in sorted order, so
// the result does not depend on the order the viewer wrote them in.
function normalise(querystring) {
    const picked = {};
    const spelled = {};
    const names = Object.keys(querystring).sort();
    for (let i = 0; i < names.length; i++) {
        const raw = names[i];
        const name = canonicalName(raw);
        if (KNOWN.indexOf(name) < 0) {
            continue;
        }
        const exact = raw === name;
        if (name in picked && (spelled[name] || !exact)) {
            continue;
        }
        picked[name] = querystring[raw].value;
        spelled[name] = exact;
    }
    return picked;
}

// The best of avif, webp and jpg that Accept allows. There is no library in a CloudFront
// Function, so this reads only what the choice needs: each listed media type and its q (a type
// with q=0 is refused, RFC 9110 section 12.4.2). Wildcards are not taken as a promise of avif
// or webp support; jpg is the answer every viewer can decode.
function negotiate(accept) {
    const allowed = {};
    const ranges = (accept || '').split(',');
    for (let i = 0; i < ranges.length; i++) {
        const parts = ranges[i].split(';');
        const type = parts[0].trim().toLowerCase();
        let q = 1;
        for (let j = 1; j < parts.length; j++) {
            const param = parts[j].trim().toLowerCase();
            if (param.startsWith('q=')) {
                q = parseFloat(param.slice(2));
            }
        }
        allowed[type] = q > 0;
    }
    if (allowed['image/avif']) {
        return 'avif';
    }
    if (allowed['image/webp']) {
        return 'webp';
    }
    return 'jpg';
}

function notFound() {
    return {
        statusCode: 404,
        statusDescription: 'Not Found',
        headers: {
            'content-type': { value: 'application/json' },
            'cache-control': { value: 'public, max-age=60' },
        },
        body: {
            encoding: 'text',
            data: '{"error":{"code":"NOT_FOUND","message":"no asset at this URL","status":404}}',
        },
    };
}

async function handler(event) {
    const request = event.request;
    const hostHeader = request.headers.host;
    // Host names are case-insensitive; a port never reaches CloudFront's 443 but costs nothing.
    const host = hostHeader ? hostHeader.value.toLowerCase().replace(/:\d+$/, '') : '';
    let vault = null;
    if (host !== '') {
        try {
            vault = await vaultHosts.get(host);
        } catch (e) {
            // get() rejects for a host the store lacks: the distribution's own name, or a shared
            // CDN host, where URLs carry /d/{vaultId}/ themselves.
            vault = null;
        }
    }
    if (vault !== null) {
        // On a vault's host every path is that vault's, so /d/{other vault}/... there is just a
        // partition named "d" of this vault, never a way into another vault.
        request.uri = '/d/' + vault + request.uri;
    }
    // The distribution is for delivery only: the rest of the API stays off the CDN.
    if (!request.uri.startsWith('/d/')) {
        return notFound();
    }

    const query = normalise(request.querystring);
    if (query.format !== undefined && query.format.toLowerCase() === 'auto') {
        const headers = request.headers;
        query[NEGOTIATED] = negotiate(headers.accept ? headers.accept.value : '');
    }
    const sorted = {};
    const names = Object.keys(query).sort();
    for (let i = 0; i < names.length; i++) {
        sorted[names[i]] = { value: query[names[i]] };
    }
    request.querystring = sorted;
    return request;
}
