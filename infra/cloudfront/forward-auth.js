// CloudFront Function (runtime cloudfront-js-2.0), viewer request, on the cache behaviours that
// reach the Lambda function. The function URL's origin access control signs each origin request
// with its own Authorization header, replacing the viewer's, so the go command's Basic or Bearer
// credentials would never reach the function: the viewer's Authorization is copied into
// X-Modmirror-Authorization (which the origin request policy forwards and the proxy checks like
// Authorization). And, as plus-rewrite does, every '+' in the URI becomes %2B: the function-first
// behaviours fail over to the S3 bucket, which reads a raw '+' as a space (a checksum-database
// lookup of a +incompatible version would miss), while the function decodes %2B to the same '+'.
// Nothing else changes. template.yaml carries a copy of this code, which a Go test (infra/) keeps
// identical.
function handler(event) {
    var request = event.request;
    var auth = request.headers['authorization'];
    if (auth && auth.value) {
        request.headers['x-modmirror-authorization'] = { value: auth.value };
    }
    if (request.uri.indexOf('+') !== -1) {
        request.uri = request.uri.split('+').join('%2B');
    }
    return request;
}
