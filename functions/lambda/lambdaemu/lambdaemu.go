// Package lambdaemu runs a Lambda function's bootstrap binary as AWS Lambda would run a custom
// runtime, and serves it as a Function URL in RESPONSE_STREAM invoke mode: for tests and
// benchmarks of the real binary on one machine.
//
// It implements the parts of the Lambda Runtime API that a function uses (invocation/next,
// invocation/<id>/response, invocation/<id>/error, init/error), and a front HTTP server that
// turns each request into a Function URL event (payload format 2.0), queues it for the function,
// and turns the function's streamed answer back into an HTTP response as it arrives: the
// "application/vnd.awslambda.http-integration-response" body, a JSON prelude (status, headers,
// cookies) followed by eight NUL bytes and then the response body, with an error reported
// mid-stream in the Lambda-Runtime-Function-Error-Type trailer cutting the response short.
// Buffered (non-streaming) answers, a LambdaFunctionURLResponse in JSON, are understood too.
//
// Like one Lambda execution environment, the function handles one invocation at a time; requests
// wait their turn.
package lambdaemu

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Runtime API paths.
const (
	apiPrefix     = "/2018-06-01/runtime/"
	nextPath      = apiPrefix + "invocation/next"
	initErrorPath = apiPrefix + "init/error"

	streamingContentType = "application/vnd.awslambda.http-integration-response"
	errorTypeTrailer     = "Lambda-Runtime-Function-Error-Type"

	maxPrelude     = 1 << 20 // bytes of JSON before the NUL separator
	maxRequestBody = 6 << 20 // a Function URL's request payload limit
	maxBuffered    = 6 << 20 // a buffered response's limit
)

// Options configure Start.
type Options struct {
	// Bootstrap is the path of the function's executable.
	Bootstrap string
	// Env is the function's environment, as KEY=VALUE strings (MODMIRROR_*, AWS_*, TMPDIR...).
	// The function inherits nothing else; the emulator adds AWS_LAMBDA_RUNTIME_API and the
	// variables Lambda sets for every function.
	Env []string
	// Log receives the function's standard output and error. Default: discarded.
	Log io.Writer
	// Timeout bounds each invocation, as the function's configured timeout does. Default 60s.
	Timeout time.Duration
	// MemoryMB is reported to the function in AWS_LAMBDA_FUNCTION_MEMORY_SIZE. Default 512.
	MemoryMB int
}

// Function is a running bootstrap behind an emulated Function URL.
type Function struct {
	// URL is the Function URL's base, http://127.0.0.1:PORT.
	URL string

	o       Options
	cmd     *exec.Cmd
	api     *http.Server
	front   *http.Server
	queue   chan *invocation
	exited  chan struct{}
	exitErr error
	started time.Time

	mu          sync.Mutex
	running     map[string]*invocation
	firstAnswer time.Time
	invocations int
	errors      []string
}

// invocation is one request in flight through the function.
type invocation struct {
	id       string
	event    []byte
	deadline time.Time
	// answer receives the start of the function's answer, once.
	answer chan answer
	// copied is closed by the front once it has passed the whole body on.
	copied chan struct{}
}

// answer is the start of a function's answer: status, headers and a body still arriving, or
// an error.
type answer struct {
	status  int
	header  http.Header
	body    io.Reader
	trailer func() http.Header // after body's EOF: the function's trailers
	err     error
}

// Start runs the bootstrap and serves it. The function is stopped by Close, or when ctx is done.
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MemoryMB <= 0 {
		o.MemoryMB = 512
	}
	f := &Function{
		o:       o,
		queue:   make(chan *invocation),
		exited:  make(chan struct{}),
		running: make(map[string]*invocation),
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: runtime API: %w", err)
	}
	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("lambdaemu: function URL: %w", err)
	}
	f.URL = "http://" + frontLn.Addr().String()
	f.api = &http.Server{Handler: http.HandlerFunc(f.serveAPI), ReadHeaderTimeout: 10 * time.Second}
	f.front = &http.Server{Handler: http.HandlerFunc(f.serveFront), ReadHeaderTimeout: 10 * time.Second}
	go f.api.Serve(apiLn)
	go f.front.Serve(frontLn)

	f.cmd = exec.CommandContext(ctx, o.Bootstrap)
	f.cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + apiLn.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME=modmirror",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(o.MemoryMB),
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"_HANDLER=bootstrap",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}, o.Env...)
	f.cmd.Stdout, f.cmd.Stderr = o.Log, o.Log
	f.started = time.Now()
	if err := f.cmd.Start(); err != nil {
		f.api.Close()
		f.front.Close()
		return nil, fmt.Errorf("lambdaemu: start %s: %w", o.Bootstrap, err)
	}
	go func() {
		f.exitErr = f.cmd.Wait()
		close(f.exited)
	}()
	return f, nil
}

// Close stops the function and the servers.
func (f *Function) Close() error {
	f.cmd.Process.Kill()
	<-f.exited
	f.front.Close()
	f.api.Close()
	return nil
}

// Exited is closed when the function's process has exited; ExitErr then says how.
func (f *Function) Exited() <-chan struct{} { return f.exited }

// ExitErr is the process's exit status, once Exited is closed.
func (f *Function) ExitErr() error {
	select {
	case <-f.exited:
		return f.exitErr
	default:
		return nil
	}
}

// Started returns when the process was started.
func (f *Function) Started() time.Time { return f.started }

// FirstAnswer returns when the first response was completely passed on, or the zero time. It is
// noted just after the last byte is written, so a client that has read the whole response may
// see the zero time for a moment.
func (f *Function) FirstAnswer() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.firstAnswer
}

// Invocations returns how many invocations the function has taken.
func (f *Function) Invocations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invocations
}

// Errors returns the errors the function reported (invocation and init errors), as their
// JSON payloads.
func (f *Function) Errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...)
}

// serveAPI is the Runtime API.
func (f *Function) serveAPI(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == nextPath:
		f.next(w, r)
	case r.Method == http.MethodPost && r.URL.Path == initErrorPath:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		f.mu.Lock()
		f.errors = append(f.errors, "init: "+string(body))
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, apiPrefix+"invocation/"):
		rest := strings.TrimPrefix(r.URL.Path, apiPrefix+"invocation/")
		id, what, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		inv := f.running[id]
		delete(f.running, id)
		f.mu.Unlock()
		if inv == nil || (what != "response" && what != "error") {
			http.Error(w, `{"errorMessage":"unknown invocation or path","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
			return
		}
		if what == "error" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			f.mu.Lock()
			f.errors = append(f.errors, string(body))
			f.mu.Unlock()
			inv.answer <- answer{err: fmt.Errorf("function error: %s", body)}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		f.response(w, r, inv)
	default:
		http.Error(w, `{"errorMessage":"not implemented by the emulator","errorType":"NotFound"}`, http.StatusNotFound)
	}
}

// next hands the function the next queued invocation.
func (f *Function) next(w http.ResponseWriter, r *http.Request) {
	var inv *invocation
	select {
	case inv = <-f.queue:
	case <-r.Context().Done():
		return
	}
	f.mu.Lock()
	f.running[inv.id] = inv
	f.invocations++
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:modmirror")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+inv.id[:8]+"-"+inv.id[8:]+";Sampled=0")
	w.Write(inv.event)
}

// response passes the function's answer to the waiting front request, streaming its body.
func (f *Function) response(w http.ResponseWriter, r *http.Request, inv *invocation) {
	if r.Header.Get("Content-Type") != streamingContentType {
		inv.answer <- bufferedAnswer(r.Body)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	br := bufio.NewReader(r.Body)
	prelude, err := readPrelude(br)
	if err != nil {
		inv.answer <- answer{err: err}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var p struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Cookies    []string          `json:"cookies"`
	}
	if err := json.Unmarshal(prelude, &p); err != nil {
		inv.answer <- answer{err: fmt.Errorf("response prelude %q: %w", prelude, err)}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if p.StatusCode == 0 {
		p.StatusCode = http.StatusOK
	}
	header := http.Header{}
	for k, v := range p.Headers {
		header.Set(k, v)
	}
	for _, c := range p.Cookies {
		header.Add("Set-Cookie", c)
	}
	inv.answer <- answer{status: p.StatusCode, header: header, body: br, trailer: func() http.Header { return r.Trailer }}
	<-inv.copied
	w.WriteHeader(http.StatusAccepted)
}

// readPrelude reads the JSON before the eight NUL bytes. JSON text holds no raw NUL byte.
func readPrelude(br *bufio.Reader) ([]byte, error) {
	var prelude []byte
	nuls := 0
	for nuls < 8 {
		c, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("response ended in its prelude (%d bytes): %w", len(prelude), err)
		}
		if c == 0 {
			nuls++
			continue
		}
		if nuls > 0 {
			return nil, fmt.Errorf("response prelude has %d NUL bytes, then %q", nuls, c)
		}
		if prelude = append(prelude, c); len(prelude) > maxPrelude {
			return nil, errors.New("response prelude is over 1 MiB")
		}
	}
	return prelude, nil
}

// bufferedAnswer reads a buffered (non-streaming) answer: a LambdaFunctionURLResponse.
func bufferedAnswer(body io.Reader) answer {
	data, err := io.ReadAll(io.LimitReader(body, maxBuffered+1))
	if err != nil {
		return answer{err: err}
	}
	if len(data) > maxBuffered {
		return answer{err: errors.New("buffered response is over 6 MB")}
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(data, &resp); err != nil || resp.StatusCode == 0 {
		// Any other JSON is the body of a 200, as Function URLs take it.
		return answer{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}}, body: bytes.NewReader(data)}
	}
	content := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if content, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return answer{err: fmt.Errorf("buffered response body: %w", err)}
		}
	}
	header := http.Header{}
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	for _, c := range resp.Cookies {
		header.Add("Set-Cookie", c)
	}
	return answer{status: resp.StatusCode, header: header, body: bytes.NewReader(content)}
}

// serveFront is the Function URL: one invocation per request.
func (f *Function) serveFront(w http.ResponseWriter, r *http.Request) {
	event, err := functionURLEvent(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv := &invocation{
		id:       requestID(),
		event:    event,
		deadline: time.Now().Add(f.o.Timeout),
		answer:   make(chan answer, 1),
		copied:   make(chan struct{}),
	}
	defer close(inv.copied)
	timeout := time.NewTimer(f.o.Timeout)
	defer timeout.Stop()
	select {
	case f.queue <- inv:
	case <-f.exited:
		http.Error(w, fmt.Sprintf("function exited: %v", f.exitErr), http.StatusBadGateway)
		return
	case <-timeout.C:
		http.Error(w, "function did not take the invocation in time", http.StatusGatewayTimeout)
		return
	case <-r.Context().Done():
		return
	}
	var a answer
	select {
	case a = <-inv.answer:
	case <-f.exited:
		http.Error(w, fmt.Sprintf("function exited: %v", f.exitErr), http.StatusBadGateway)
		return
	case <-timeout.C:
		http.Error(w, "Task timed out", http.StatusBadGateway)
		return
	}
	if a.err != nil {
		http.Error(w, "Internal Server Error: "+a.err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	if err := copyFlushing(w, a.body); err != nil {
		io.Copy(io.Discard, a.body) // let the function finish its POST
		panic(http.ErrAbortHandler)
	}
	if a.trailer != nil && a.trailer().Get(errorTypeTrailer) != "" {
		f.mu.Lock()
		f.errors = append(f.errors, "mid-stream: "+a.trailer().Get(errorTypeTrailer))
		f.mu.Unlock()
		panic(http.ErrAbortHandler) // the client sees a cut response, as from Lambda
	}
	f.mu.Lock()
	if f.firstAnswer.IsZero() {
		f.firstAnswer = time.Now()
	}
	f.mu.Unlock()
}

// copyFlushing copies the body on as it arrives.
func copyFlushing(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// functionURLEvent turns an HTTP request into a Function URL event, payload format 2.0.
func functionURLEvent(r *http.Request) ([]byte, error) {
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if !strings.HasPrefix(rawPath, "/") {
		return nil, fmt.Errorf("request target %q is not a path", r.RequestURI)
	}
	headers := map[string]string{"host": r.Host}
	var cookies []string
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[k] = strings.Join(vs, ",")
	}
	headers["x-forwarded-proto"] = "http"
	var query map[string]string
	if rawQuery != "" {
		query = map[string]string{}
		for k, vs := range r.URL.Query() {
			query[k] = strings.Join(vs, ",")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxRequestBody {
		return nil, errors.New("request body is over 6 MB")
	}
	now := time.Now()
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := events.LambdaFunctionURLRequest{
		Version:               "2.0",
		RawPath:               rawPath,
		RawQueryString:        rawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    requestID(),
			APIID:        "emulator",
			DomainName:   r.Host,
			DomainPrefix: "emulator",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return json.Marshal(ev)
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
