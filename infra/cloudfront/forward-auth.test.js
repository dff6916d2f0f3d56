// Unit tests of the forward-auth CloudFront Function, run by `node --test infra/cloudfront/` (and
// by the Go tests in infra/). The function is loaded the way CloudFront runs it: a script defining
// handler, with no module system.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { cloudFrontFunction } = require('./sandbox.js');

const { code, load } = cloudFrontFunction('forward-auth.js');

// event builds a viewer-request event as CloudFront passes it, with the given extra headers
// (lowercase names, as CloudFront gives them).
function event(method, headers, uri) {
    return {
        version: '1.0',
        context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE', requestId: 'r' },
        viewer: { ip: '198.51.100.11' },
        request: {
            method: method,
            uri: uri || '/corp.example.com/m/@v/list',
            querystring: { a: { value: 'x+y' } },
            headers: Object.assign({
                host: { value: 'd111111abcdef8.cloudfront.net' },
                'user-agent': { value: 'Go-http-client/1.1' },
            }, headers),
            cookies: { c: { value: '1+1' } },
        },
    };
}

// run calls the handler and checks that it returned the request itself with nothing changed but
// the x-modmirror-authorization header and the URI. (Objects the sandbox creates have its
// prototypes, so values are compared, not objects.)
function run(ev) {
    const before = JSON.parse(JSON.stringify(ev.request));
    const got = load()(ev);
    assert.strictEqual(got, ev.request);
    const rest = JSON.parse(JSON.stringify(got));
    delete rest.headers['x-modmirror-authorization'];
    delete before.headers['x-modmirror-authorization'];
    delete rest.uri;
    delete before.uri;
    assert.deepStrictEqual(rest, before);
    return got;
}

const credentials = [
    'Basic ' + Buffer.from('user:s3cret-token').toString('base64'),
    'Bearer s3cret-token',
    'bearer  with  spaces ',
];

for (const value of credentials) {
    test(`copies Authorization ${JSON.stringify(value)}`, () => {
        const got = run(event('GET', { authorization: { value: value } }));
        assert.strictEqual(got.headers['x-modmirror-authorization'].value, value);
        assert.deepStrictEqual(Object.keys(got.headers['x-modmirror-authorization']), ['value']);
        // The viewer's Authorization stays (origin access control replaces it at the origin).
        assert.strictEqual(got.headers['authorization'].value, value);
    });
}

test('replaces a viewer-sent X-Modmirror-Authorization with the Authorization', () => {
    const got = run(event('GET', {
        authorization: { value: 'Bearer right' },
        'x-modmirror-authorization': { value: 'Bearer other' },
    }));
    assert.strictEqual(got.headers['x-modmirror-authorization'].value, 'Bearer right');
});

test('copies on POST (warm) too', () => {
    const got = run(event('POST', {
        authorization: { value: 'Bearer w' },
        'x-amz-content-sha256': { value: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    }));
    assert.strictEqual(got.headers['x-modmirror-authorization'].value, 'Bearer w');
});

test('leaves a request without Authorization unchanged', () => {
    const got = run(event('GET', {}));
    assert.strictEqual(got.headers['x-modmirror-authorization'], undefined);
});

test('leaves an empty Authorization unchanged', () => {
    const got = run(event('GET', { authorization: { value: '' } }));
    assert.strictEqual(got.headers['x-modmirror-authorization'], undefined);
});

// The URI: '+' becomes %2B (what the S3 origin needs on failover and the function decodes), with
// or without credentials; nothing else in it changes.
const uris = [
    ['/sumdb/sum.example/lookup/example.com/m@v2.0.0+incompatible', '/sumdb/sum.example/lookup/example.com/m@v2.0.0%2Bincompatible'],
    ['/example.com/m/@v/v1.0.0-pre+a+b.info', '/example.com/m/@v/v1.0.0-pre%2Ba%2Bb.info'],
    ['/example.com/m/@v/list', '/example.com/m/@v/list'],
    ['/example.com/!upper/@latest', '/example.com/!upper/@latest'],
    ['/sumdb/sum.example/lookup/example.com/m@v2.0.0%2Bincompatible', '/sumdb/sum.example/lookup/example.com/m@v2.0.0%2Bincompatible'],
    ['/_mirror/warm', '/_mirror/warm'],
    ['/', '/'],
];

for (const [uri, want] of uris) {
    for (const headers of [{}, { authorization: { value: 'Bearer t' } }]) {
        test(`rewrites ${uri} (${Object.keys(headers).length ? 'with' : 'without'} credentials)`, () => {
            const got = run(event('GET', headers, uri));
            assert.strictEqual(got.uri, want);
            assert.strictEqual(got.headers['x-modmirror-authorization']?.value, headers.authorization?.value);
        });
    }
}

test('is a plain script, as cloudfront-js-2.0 runs it', () => {
    assert.doesNotMatch(code, /\b(require|import|export|module\.exports)\b/);
    assert.match(code, /^function handler\(event\) \{$/m);
});
