package lambdaemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/modmirror/modmirror/functions/lambda/lambdaemu"
)

// helperEnv makes the test binary run as a Lambda function instead of running tests: with
// lambdaurl's streaming handler ("url"), or with a raw streaming handler whose body fails
// half-way ("midstream").
const helperEnv = "LAMBDAEMU_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "url":
		lambdaurl.Start(http.HandlerFunc(echo))
	case "midstream":
		lambda.Start(func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
			if req.RawPath == "/fail" {
				return nil, errors.New("failed before answering")
			}
			return &events.LambdaFunctionURLStreamingResponse{
				StatusCode: 200,
				Headers:    map[string]string{"Content-Type": "text/plain"},
				Body:       io.MultiReader(strings.NewReader("half of it"), failingReader{}),
			}, nil
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// echo answers with what the function was asked, as JSON, after a header and a flushed first
// line, so that the test can see both the event and the streaming.
func echo(w http.ResponseWriter, r *http.Request) {
	ev, _ := lambdaurl.RequestFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "yes")
	http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
	w.WriteHeader(http.StatusTeapot)
	body, _ := io.ReadAll(r.Body)
	json.NewEncoder(w).Encode(map[string]any{
		"method":  r.Method,
		"path":    r.URL.EscapedPath(),
		"query":   r.URL.RawQuery,
		"header":  r.Header.Get("X-Test"),
		"cookies": ev.Cookies,
		"body":    fmt.Sprintf("%x", body),
		"domain":  ev.RequestContext.DomainName,
	})
}

func start(t *testing.T, mode string) *lambdaemu.Function {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	f, err := lambdaemu.Start(t.Context(), lambdaemu.Options{
		Bootstrap: exe,
		Env:       []string{helperEnv + "=" + mode},
		Log:       &log,
		Timeout:   20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("function log:\n%s", log.String())
		}
	})
	return f
}

func TestStreamingRoundTrip(t *testing.T) {
	f := start(t, "url")
	tests := []struct {
		method, path, body string
		want               map[string]any
	}{
		{"GET", "/a/b%2Bc/@v/v1.0.0+incompatible.zip?x=1", "", map[string]any{"path": "/a/b%2Bc/@v/v1.0.0+incompatible.zip", "query": "x=1"}},
		{"POST", "/post", "payload \x00\xff", map[string]any{"method": "POST", "body": fmt.Sprintf("%x", "payload \x00\xff")}},
		{"GET", "/cookies", "", map[string]any{"cookies": []any{"c=1", "d=2"}, "header": "h1,h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Add("X-Test", "h1")
			req.Header.Add("X-Test", "h2")
			req.Header.Set("Cookie", "c=1; d=2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("Set-Cookie") != "a=1" {
				t.Errorf("status %d, X-Echo %q, Set-Cookie %q; want 418, yes, a=1", resp.StatusCode, resp.Header.Get("X-Echo"), resp.Header.Get("Set-Cookie"))
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got["domain"] != strings.TrimPrefix(f.URL, "http://") {
				t.Errorf("event domain %v, want the Function URL's host", got["domain"])
			}
			for k, v := range tt.want {
				if fmt.Sprint(got[k]) != fmt.Sprint(v) {
					t.Errorf("function saw %s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
	if n := f.Invocations(); n != len(tests) {
		t.Errorf("%d invocations, want %d", n, len(tests))
	}
	if f.FirstAnswer().Before(f.Started()) {
		t.Errorf("first answer at %v, before the start at %v", f.FirstAnswer(), f.Started())
	}
}

func TestFunctionErrors(t *testing.T) {
	f := start(t, "midstream")
	// An error before the answer is a 502, as from a Function URL.
	resp, err := http.Get(f.URL + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("function error: status %d, want 502", resp.StatusCode)
	}
	// An error in the middle of the body cuts the response short.
	resp, err = http.Get(f.URL + "/midstream")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("a body that failed mid-stream was read whole: %q", body)
	}
	if !strings.HasPrefix(string(body), "half of it") {
		t.Errorf("body before the failure = %q, want what the function sent", body)
	}
	errs := f.Errors()
	if len(errs) != 2 || !strings.Contains(errs[0], "failed before answering") || !strings.Contains(errs[1], "mid-stream") {
		t.Errorf("errors reported: %q; want the invocation error and the mid-stream one", errs)
	}
	// The function goes on serving after both.
	if resp, err := http.Get(f.URL + "/fail"); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("after the errors: %v, %v", resp, err)
	}
}

func TestProcessExit(t *testing.T) {
	f, err := lambdaemu.Start(t.Context(), lambdaemu.Options{Bootstrap: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	select {
	case <-f.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("/bin/false did not exit")
	}
	resp, err := http.Get(f.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || f.ExitErr() == nil {
		t.Errorf("request to an exited function: %d, exit %v; want 502 and an exit error", resp.StatusCode, f.ExitErr())
	}
}
