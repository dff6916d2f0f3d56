// Command lambda is modmirror's AWS Lambda host: the GOPROXY protocol behind a Lambda Function
// URL in RESPONSE_STREAM mode (aws-lambda-go's lambdaurl), storing in S3. Deployed behind
// CloudFront (template.yaml), it sees only what the CDN cannot serve from the bucket: misses,
// lists, @latest, queries and the checksum database.
//
// Build it as the custom runtime's bootstrap (`make lambda`):
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o bootstrap ./functions/lambda
//
// Its configuration is the environment alone, MODMIRROR_<FLAG> for each flag:
//
//	MODMIRROR_STORE             s3://bucket/prefix (required)
//	MODMIRROR_UPSTREAM          upstream proxies, GOPROXY syntax (required)
//	MODMIRROR_SUMDB             checksum database NAME[+KEY [URL]] or off (default: the go command's)
//	MODMIRROR_PRIVATE           module path patterns, GOPRIVATE syntax: no checksum database
//	MODMIRROR_PRIVATE_UPSTREAM  where private modules come from (never the public upstream)
//	MODMIRROR_TOKENS            the token file's content (ID SHA256 SCOPES a line), or a file bundled with the function
//	MODMIRROR_ANONYMOUS         public reads without a token (default true)
//	MODMIRROR_PUBLIC_URL        CDN base URL for redirects (default: presigned S3 URLs)
//	MODMIRROR_INLINE_MAX        largest object served inline; larger ones are redirected
//	MODMIRROR_SPOOL_DIR         where zips are verified (default: the temporary directory, /tmp)
//
// The S3 client takes region, credentials and endpoint from the SDK's standard variables, which
// Lambda sets. Nothing at start-up touches the network.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h, err := setup(context.Background(), os.Args[1:], os.Getenv, logger, os.Stderr)
	if err != nil {
		// Lambda reports the exit as an initialization error, with this in the function's log.
		logger.Error("configuration", "err", err)
		fmt.Fprintln(os.Stderr, "modmirror:", err)
		os.Exit(1)
	}
	lambda.Start(functionURLHandler(h))
}
