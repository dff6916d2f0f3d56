package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
)

// functionURLHandler serves Function URL events (RESPONSE_STREAM invoke mode) with h, through
// lambdaurl. A request path that is not even a URL path, which lambdaurl would turn into a
// function error (a 502 from the Function URL), answers 404 with a reason instead, as the
// proxy answers every other invalid path, so that the go command falls through to its next
// proxy.
func functionURLHandler(h http.Handler) func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
	wrapped := lambdaurl.Wrap(h)
	return func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		if _, err := url.ParseRequestURI(req.RawPath); err != nil || !strings.HasPrefix(req.RawPath, "/") {
			return &events.LambdaFunctionURLStreamingResponse{
				StatusCode: http.StatusNotFound,
				Headers: map[string]string{
					"Content-Type":  "text/plain; charset=utf-8",
					"Cache-Control": "public, max-age=60",
				},
				Body: strings.NewReader("invalid request path\n"),
			}, nil
		}
		return wrapped(ctx, req)
	}
}
