// Package infra holds the parts of the AWS deployment that are not Go: the CloudFront Functions
// in cloudfront/ (plus-rewrite: '+' to %2B for the S3 origin; forward-auth: the caller's
// credentials for the function, and the same rewrite for a failover to S3) and, at the
// repository root, template.yaml. Its tests run the CloudFront Functions' own tests under node
// and check the template: references, which origin or origin group each kind of path reaches
// under CloudFront's ordered path matching and on which status codes it fails over, and
// least-privilege IAM.
package infra
