// Package infra holds the parts of the AWS deployment that are not Go: the CloudFront Function
// in cloudfront/ (rewriting '+' to %2B for the S3 origin) and, at the repository root,
// template.yaml. Its tests run the CloudFront Function's own tests under node and check the
// template: references, cache behaviours, and least-privilege IAM.
package infra
