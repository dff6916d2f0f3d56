// Unit tests of the CloudFront Function, run by `node --test infra/cloudfront/` (and by the Go
// tests in infra/). The function is loaded the way CloudFront runs it: a script defining handler,
// with no module system.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { cloudFrontFunction } = require('./sandbox.js');

const { code, load } = cloudFrontFunction('plus-rewrite.js');

// event builds a viewer-request event as CloudFront passes it.
function event(uri) {
    return {
        version: '1.0',
        context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE', requestId: 'r' },
        viewer: { ip: '198.51.100.11' },
        request: {
            method: 'GET',
            uri: uri,
            querystring: { a: { value: 'x+y' } },
            headers: { host: { value: 'd111111abcdef8.cloudfront.net' }, 'user-agent': { value: 'Go-http-client/1.1' } },
            cookies: { c: { value: '1+1' } },
        },
    };
}

const cases = [
    ['/example.com/incompat/@v/v2.0.0+incompatible.zip', '/example.com/incompat/@v/v2.0.0%2Bincompatible.zip'],
    ['/example.com/incompat/@v/v2.0.0+incompatible.info', '/example.com/incompat/@v/v2.0.0%2Bincompatible.info'],
    ['/example.com/m/@v/v1.0.0-pre+meta+more.mod', '/example.com/m/@v/v1.0.0-pre%2Bmeta%2Bmore.mod'],
    ['/+', '/%2B'],
    ['/example.com/!upper/!mod/@v/v1.0.0.zip', '/example.com/!upper/!mod/@v/v1.0.0.zip'],
    ['/example.com/m/@v/v2.0.0%2Bincompatible.zip', '/example.com/m/@v/v2.0.0%2Bincompatible.zip'],
    ['/example.com/m/@v/v1.0.0 x.zip', '/example.com/m/@v/v1.0.0 x.zip'],
    ['/', '/'],
];

for (const [uri, want] of cases) {
    test(`rewrites ${uri}`, () => {
        const handler = load();
        const ev = event(uri);
        const before = JSON.parse(JSON.stringify(ev.request));
        const got = handler(ev);
        assert.strictEqual(got.uri, want);
        // It returns the request (not a response), with nothing but the URI changed.
        assert.strictEqual(got, ev.request);
        assert.deepStrictEqual({ ...got, uri: before.uri }, before);
    });
}

test('is a plain script, as cloudfront-js-2.0 runs it', () => {
    assert.doesNotMatch(code, /\b(require|import|export|module\.exports)\b/);
    assert.match(code, /^function handler\(event\) \{$/m);
});
