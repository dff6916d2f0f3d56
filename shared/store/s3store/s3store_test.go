package s3store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/store/s3store"
	"github.com/modmirror/modmirror/shared/store/s3store/s3test"
	"github.com/modmirror/modmirror/shared/store/storetest"
)

// newStore returns a function making Stores under fresh prefixes of one new bucket.
func newStore(t *testing.T, srv *s3test.Server, opts ...s3store.Option) func(t *testing.T) store.Store {
	bucket := srv.NewBucket(t)
	var n atomic.Int32
	return func(t *testing.T) store.Store {
		spec := fmt.Sprintf("s3://%s/run-%d", bucket, n.Add(1))
		s, err := s3store.New(t.Context(), spec, append([]s3store.Option{s3store.WithClient(srv.Client())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore(t, s3test.Start(t)))
}

// TestDefaultConfig makes a Store the way hosts do, from the SDK's environment variables alone:
// AWS_ENDPOINT_URL_S3 must switch to path-style addressing.
func TestDefaultConfig(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	bucket := srv.NewBucket(t)
	s, err := s3store.New(t.Context(), "s3://"+bucket+"/mirror/")
	if err != nil {
		t.Fatal(err)
	}
	const key = "example.com/incompat/@v/v2.0.0+incompatible.info"
	if _, err := s.Put(t.Context(), key, strings.NewReader("{}"), 2, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The object is where a static GOPROXY over the bucket expects it, with its literal '+'.
	out, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: ptr("mirror/" + key)})
	if err != nil {
		t.Fatalf("HeadObject mirror/%s: %v", key, err)
	}
	if *out.ContentLength != 2 {
		t.Errorf("object has %d bytes, want 2", *out.ContentLength)
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec, bucket, prefix string
		ok                   bool
	}{
		{"s3://b", "b", "", true},
		{"s3://b/", "b", "", true},
		{"s3://b/p", "b", "p/", true},
		{"s3://b/p/q/", "b", "p/q/", true},
		{"s3://b//p", "", "", false},
		{"s3://b/../p", "", "", false},
		{"s3://", "", "", false},
		{"s3:b/p", "", "", false},
		{"https://b/p", "", "", false},
		{"s3://u:p@b/p", "", "", false},
		{"s3://b/p?x=1", "", "", false},
		{"/dir", "", "", false},
	}
	for _, tt := range tests {
		bucket, prefix, err := s3store.ParseSpec(tt.spec)
		if (err == nil) != tt.ok || bucket != tt.bucket || prefix != tt.prefix {
			t.Errorf("ParseSpec(%q) = %q, %q, %v; want %q, %q, ok %v", tt.spec, bucket, prefix, err, tt.bucket, tt.prefix, tt.ok)
		}
	}
}

// TestMultipart checks what the conformance suite cannot see: that a multipart upload is
// conditional on completion and leaves no upload behind when it fails.
func TestMultipart(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	s, err := s3store.New(ctx, "s3://"+bucket+"/mp", s3store.WithClient(srv.Client()), s3store.WithPartSize(s3store.MinPartSize))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*s3store.MinPartSize+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	const key = "big.example/m/@v/v1.0.0.zip"

	first, err := s.Put(ctx, key, io.MultiReader(bytes.NewReader(data)), -1, store.PutOptions{IfAbsent: true, ContentType: "application/zip"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(first.ETag, `-3"`) {
		t.Errorf("ETag %s is not a three-part upload's", first.ETag)
	}
	st, err := s.Stat(ctx, key)
	if err != nil || st.ETag != first.ETag || st.Size != int64(len(data)) || st.ContentType != "application/zip" {
		t.Errorf("Stat = %+v, %v; want ETag %s, %d bytes, application/zip", st, err, first.ETag, len(data))
	}

	tests := []struct {
		name string
		r    io.Reader
		size int64
		o    store.PutOptions
		want error
	}{
		{"IfAbsent on a present key", bytes.NewReader(data), int64(len(data)), store.PutOptions{IfAbsent: true}, store.ErrExist},
		{"IfMatch a stale ETag", bytes.NewReader(data), -1, store.PutOptions{IfMatch: `"0123456789abcdef0123456789abcdef-3"`}, store.ErrPrecondition},
		{"reader fails in part 2", &failAfter{r: bytes.NewReader(data), n: s3store.MinPartSize + 10}, -1, store.PutOptions{}, errFail},
		{"reader fails in part 3", &failAfter{r: bytes.NewReader(data), n: 2*s3store.MinPartSize + 10}, int64(len(data)), store.PutOptions{IfMatch: first.ETag}, errFail},
		{"too long", bytes.NewReader(data), int64(len(data) - 1), store.PutOptions{}, nil},
		{"too short", bytes.NewReader(data), int64(len(data) + 1), store.PutOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Put(ctx, key, tt.r, tt.size, tt.o)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Put: %v, want %v", err, tt.want)
			}
			st, err := s.Stat(ctx, key)
			if err != nil || st.ETag != first.ETag {
				t.Errorf("after the failed Put: Stat = %+v, %v; want the first object, ETag %s", st, err, first.ETag)
			}
		})
	}

	// The condition holds at completion, not only when the upload starts: another writer
	// creates (or replaces) the key while the parts go up.
	races := []struct {
		name string
		o    func(etag string) store.PutOptions
		want error
	}{
		{"created during the upload", func(string) store.PutOptions { return store.PutOptions{IfAbsent: true} }, store.ErrExist},
		{"replaced during the upload", func(etag string) store.PutOptions { return store.PutOptions{IfMatch: etag} }, store.ErrPrecondition},
	}
	for i, tt := range races {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("race%d.example/m/@v/v1.0.0.zip", i)
			var etag string
			if tt.want == store.ErrPrecondition {
				info, err := s.Put(ctx, key, strings.NewReader("old"), 3, store.PutOptions{})
				if err != nil {
					t.Fatal(err)
				}
				etag = info.ETag
			}
			r := &hookAfter{r: bytes.NewReader(data), n: s3store.MinPartSize + 1, hook: func() {
				if _, err := s.Put(ctx, key, strings.NewReader("other"), 5, store.PutOptions{}); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			}}
			if _, err := s.Put(ctx, key, r, -1, tt.o(etag)); !errors.Is(err, tt.want) {
				t.Errorf("Put: %v, want %v", err, tt.want)
			}
			if data, _, err := store.ReadAll(ctx, s, key, 100); err != nil || string(data) != "other" {
				t.Errorf("key holds %q, %v; want the other writer's %q", data, err, "other")
			}
		})
	}

	ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) > 0 {
		t.Errorf("%d multipart uploads left behind by failed Puts", len(ups.Uploads))
	}

	// A compare-and-swap through a multipart upload.
	rev := bytes.Clone(data)
	rev[0] ^= 1
	second, err := s.Put(ctx, key, bytes.NewReader(rev), int64(len(rev)), store.PutOptions{IfMatch: first.ETag})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, rev) || obj.Info().ETag != second.ETag {
		t.Errorf("after the multipart compare-and-swap: %d bytes (equal %v), ETag %s, %v; want the new content, ETag %s",
			len(got), bytes.Equal(got, rev), obj.Info().ETag, err, second.ETag)
	}
}

var errFail = errors.New("failing on purpose")

type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errFail
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// hookAfter calls hook once, after n bytes were read from r.
type hookAfter struct {
	r    io.Reader
	n    int
	hook func()
}

func (h *hookAfter) Read(p []byte) (int, error) {
	if h.n <= 0 && h.hook != nil {
		h.hook()
		h.hook = nil
	}
	if h.n > 0 {
		p = p[:min(len(p), h.n)]
	}
	n, err := h.r.Read(p)
	h.n -= n
	return n, err
}

// TestSeek checks the lazy, ranged reads behind Seek, and that a replaced object fails a read
// instead of mixing contents.
func TestSeek(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv)(t)
	ctx := t.Context()
	const key = "seek.example/m/@v/v1.0.0.zip"
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	rs := obj.(io.ReadSeeker)
	reads := []struct{ off, n int64 }{{0, 10}, {500000, 100}, {10, 5}, {int64(len(data)) - 3, 3}}
	for _, r := range reads {
		if _, err := rs.Seek(r.off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, r.n)
		if _, err := io.ReadFull(rs, buf); err != nil || !bytes.Equal(buf, data[r.off:r.off+r.n]) {
			t.Errorf("read %d bytes at %d: %v, equal %v", r.n, r.off, err, bytes.Equal(buf, data[r.off:r.off+r.n]))
		}
	}
	if n, err := rs.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v; want 0, EOF", n, err)
	}

	if _, err := s.Put(ctx, key, strings.NewReader("replaced"), 8, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := rs.Read(make([]byte, 10)); err == nil {
		t.Errorf("read of a replaced object after a seek: %d bytes, no error", n)
	}
}

func TestURL(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	s, err := s3store.New(ctx, "s3://"+bucket+"/p", s3store.WithClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	const key = "example.com/!upper/@v/v2.0.0+incompatible.zip"
	if _, err := s.Put(ctx, key, strings.NewReader("zip bytes"), 9, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := s.URL(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "%2Bincompatible") {
		t.Errorf("presigned URL %s does not escape '+'", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "zip bytes" {
		t.Errorf("GET presigned URL = %d %q; want 200 %q", resp.StatusCode, body, "zip bytes")
	}

	pub, err := s3store.New(ctx, "s3://"+bucket+"/p", s3store.WithClient(srv.Client()), s3store.WithPublicURL("https://cdn.example/"))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := pub.URL(ctx, key); err != nil || u != "https://cdn.example/"+key {
		t.Errorf("public URL = %q, %v; want https://cdn.example/%s", u, err, key)
	}
	if u, err := pub.URL(ctx, "odd/a b%c?d#e"); err != nil || u != "https://cdn.example/odd/a%20b%25c%3Fd%23e" {
		t.Errorf("public URL of a key with URL metacharacters = %q, %v", u, err)
	}
	if _, err := pub.URL(ctx, "../x"); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("URL of an invalid key: %v, want ErrInvalidKey", err)
	}
	if _, err := s3store.New(ctx, "s3://b", s3store.WithPublicURL("ftp://x")); err == nil {
		t.Errorf("New accepted an ftp public URL")
	}
}

func ptr[T any](v T) *T { return &v }
