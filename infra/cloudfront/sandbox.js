// Test helper, not a CloudFront Function: loads one of this directory's functions the way
// CloudFront runs it, a script defining handler with no module system. Both functions' tests use
// it (`node --test` runs *.test.js files only).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

// cloudFrontFunction returns the source of the function in file and load, which runs it in a
// fresh context and returns its handler.
function cloudFrontFunction(file) {
    const code = fs.readFileSync(path.join(__dirname, file), 'utf8');
    function load() {
        const sandbox = {};
        vm.runInNewContext(code + '\nthis.handler = handler;', sandbox);
        return sandbox.handler;
    }
    return { code, load };
}

module.exports = { cloudFrontFunction };
