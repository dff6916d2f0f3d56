// Package s3store keeps a store.Store in an S3 bucket, or in a bucket of any S3-compatible server:
// the object under key K is the S3 object PREFIX/K, so that the bucket (served as it is, through
// a CDN that rewrites '+' to %2B) is itself a static GOPROXY.
//
// A Store is made from a spec, s3://bucket/prefix. Region, credentials and endpoint come from the
// SDK's own standard configuration (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3, shared
// config files, the Lambda role...). Whenever a custom endpoint is set, the Store addresses the
// bucket path-style, so an S3-compatible server on 127.0.0.1 needs no other setting.
//
// Writes are atomic: a single PutObject for content up to the part size, else a multipart upload
// that is visible only once completed, and aborted on any failure. Create-only writes send
// If-None-Match: * and compare-and-swap writes If-Match, on the PutObject or on the
// CompleteMultipartUpload, so the server decides atomically.
//
// Only hosts (the server, the Lambda function, the generator) import this package: the core
// links no cloud SDK.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modmirror/modmirror/shared/store"
)

// Defaults of the Options.
const (
	// DefaultPartSize is the size of the parts of a multipart upload, and so the largest
	// content a single PutObject carries. It is also the memory a Put holds at most.
	DefaultPartSize = 8 << 20
	// MinPartSize is the smallest part S3 accepts (but for the last).
	MinPartSize = 5 << 20
	// DefaultPresignExpiry is how long a presigned URL from URL stays valid.
	DefaultPresignExpiry = 15 * time.Minute
	// fallbackRegion signs requests when no region is configured, as S3-compatible servers
	// usually expect.
	fallbackRegion = "us-east-1"
)

// Store is a store.Store, store.Walker and store.URLer over an S3 bucket. It is safe for
// concurrent use.
//
// Its ETags are S3's, derived from the content (an MD5, or for multipart uploads an MD5 of the
// parts' MD5s): they come back for a key only with the content they were given for.
//
// The Objects Open returns are io.ReadSeeker: they read the GetObject answer Open started, and
// a Seek elsewhere than where that answer stands costs one ranged GetObject on the next Read,
// conditioned with If-Match on the object's ETag, so a replaced object fails the read instead
// of mixing two contents.
type Store struct {
	client    *s3.Client
	presign   *s3.PresignClient
	bucket    string
	prefix    string // "" or ending in "/"
	publicURL string // "" or without a trailing slash
	partSize  int64
	expiry    time.Duration
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Walker = (*Store)(nil)
	_ store.URLer  = (*Store)(nil)
)

// An Option configures New.
type Option func(*options)

type options struct {
	client    *s3.Client
	publicURL string
	partSize  int64
	expiry    time.Duration
}

// WithClient makes the Store use c instead of a client made from the SDK's default
// configuration.
func WithClient(c *s3.Client) Option { return func(o *options) { o.client = c } }

// WithPublicURL makes URL answer base + "/" + key (a CDN in front of the bucket whose origin
// path is the Store's prefix) instead of a presigned URL.
func WithPublicURL(base string) Option { return func(o *options) { o.publicURL = base } }

// WithPartSize sets the part size of multipart uploads (default DefaultPartSize). S3 refuses
// parts under MinPartSize but for the last; S3-compatible servers may accept smaller ones.
func WithPartSize(n int64) Option { return func(o *options) { o.partSize = n } }

// WithPresignExpiry sets how long presigned URLs stay valid (default DefaultPresignExpiry).
func WithPresignExpiry(d time.Duration) Option { return func(o *options) { o.expiry = d } }

// ParseSpec splits an s3://bucket/prefix spec into the bucket name and the key prefix ("" or
// ending in "/").
func ParseSpec(spec string) (bucket, prefix string, err error) {
	u, err := url.Parse(spec)
	if err != nil {
		return "", "", fmt.Errorf("s3store: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", fmt.Errorf("s3store: %q is not s3://bucket[/prefix]", spec)
	}
	prefix = strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	if prefix != "" {
		if err := store.CheckKey(prefix); err != nil {
			return "", "", fmt.Errorf("s3store: prefix of %q: %w", spec, err)
		}
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// New returns a Store for spec, s3://bucket/prefix. It reads the SDK's configuration (no
// network: credentials are fetched on first use) and never checks that the bucket exists.
func New(ctx context.Context, spec string, opts ...Option) (*Store, error) {
	bucket, prefix, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	o := options{partSize: DefaultPartSize, expiry: DefaultPresignExpiry}
	for _, opt := range opts {
		opt(&o)
	}
	if o.partSize <= 0 {
		return nil, fmt.Errorf("s3store: part size %d", o.partSize)
	}
	if o.publicURL != "" {
		pu, err := url.Parse(o.publicURL)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("s3store: public URL %q is not an http(s) URL", o.publicURL)
		}
		o.publicURL = strings.TrimRight(o.publicURL, "/")
	}
	if o.client == nil {
		if o.client, err = NewClient(ctx); err != nil {
			return nil, err
		}
	}
	return &Store{
		client:    o.client,
		presign:   s3.NewPresignClient(o.client),
		bucket:    bucket,
		prefix:    prefix,
		publicURL: o.publicURL,
		partSize:  o.partSize,
		expiry:    o.expiry,
	}, nil
}

// NewClient returns an S3 client from the SDK's default configuration, addressing buckets
// path-style whenever a custom endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or the shared
// config's) is set, and signing for us-east-1 when no region is configured.
func NewClient(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3store: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = fallbackRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		// BaseEndpoint holds the resolved custom endpoint here, if any.
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.UsePathStyle = true
		}
	}), nil
}

// String returns the Store's spec.
func (s *Store) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Client returns the S3 client the Store uses.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the name of the Store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// objectKey returns the S3 key of a store key.
func (s *Store) objectKey(key string) string { return s.prefix + key }

// Stat implements store.Store with HeadObject.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))})
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %q: %w", key, readError(err))
	}
	return store.Info{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		ModTime:      aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		CacheControl: aws.ToString(out.CacheControl),
	}, nil
}

// Open implements store.Store with GetObject. The Object is an io.ReadSeeker (see Store).
func (s *Store) Open(ctx context.Context, key string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))})
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", key, readError(err))
	}
	info := store.Info{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		ModTime:      aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		CacheControl: aws.ToString(out.CacheControl),
	}
	return &object{ctx: ctx, s: s, info: info, body: out.Body}, nil
}

// URL implements store.URLer: the public URL base + "/" + key if the Store has one, else a GET
// URL presigned for the presign expiry. Either keeps '+' in the key: a presigned URL escapes it
// as %2B; a public URL leaves it to the CDN to rewrite.
func (s *Store) URL(ctx context.Context, key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", fmt.Errorf("url %q: %w", key, err)
	}
	if s.publicURL != "" {
		return s.publicURL + "/" + escapePath(key), nil
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(key))},
		s3.WithPresignExpires(s.expiry))
	if err != nil {
		return "", fmt.Errorf("presign %q: %w", key, err)
	}
	return req.URL, nil
}

// escapePath percent-encodes what a URL path cannot hold literally, keeping '/' and the
// sub-delimiters ('!' of case-escaped module paths, '+' of +incompatible) as they are.
func escapePath(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Walk implements store.Walker with ListObjectsV2, whose order (UTF-8 byte order) is the
// lexical key order. Keys that are not store keys (folder markers, say) are skipped.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(store.Info) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: aws.String(s.objectKey(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("walk %q: %w", prefix, readError(err))
		}
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || store.CheckKey(key) != nil {
				continue
			}
			err := fn(store.Info{
				Key:     key,
				Size:    aws.ToInt64(o.Size),
				ETag:    aws.ToString(o.ETag),
				ModTime: aws.ToTime(o.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// errorStatus returns the HTTP status of a failed S3 call, or 0.
func errorStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// readError makes err wrap store.ErrNotExist if S3 says the object does not exist.
func readError(err error) error {
	if errorStatus(err) == 404 {
		return fmt.Errorf("%w (%w)", store.ErrNotExist, err)
	}
	return err
}
