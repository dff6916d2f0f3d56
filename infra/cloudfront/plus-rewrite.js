// CloudFront Function (runtime cloudfront-js-2.0), viewer request, on the cache behaviours whose
// origin group tries the S3 bucket first. S3 reads a raw '+' in a URL path as a space, so
// example.com/m/@v/v2.0.0+incompatible.zip would miss; every '+' in the URI becomes %2B, which S3
// decodes to the '+' of the object's key. Nothing else changes. template.yaml carries a copy of
// this code, which a Go test (infra/) keeps identical.
function handler(event) {
    var request = event.request;
    if (request.uri.indexOf('+') !== -1) {
        request.uri = request.uri.split('+').join('%2B');
    }
    return request;
}
