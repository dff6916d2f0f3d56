package config

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/upstream"
)

// DefaultSumDBName is the go command's default checksum database.
const DefaultSumDBName = "sum.golang.org"

// knownSumDBKeys is the go command's built-in table of checksum database verifier keys
// (cmd/go/internal/modfetch/key.go), carried the same way: data, not configuration.
var knownSumDBKeys = map[string]string{
	DefaultSumDBName: "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
}

// SumDB is a checksum database as GOSUMDB names it.
type SumDB struct {
	Name string // the database's name, as in /sumdb/<name>/
	Key  string // its verifier key, "name+hash+base64"
	URL  string // its own URL, used only when no upstream proxies it
	// ExplicitURL: GOSUMDB named the URL, which then bypasses the proxies, as in the go command.
	ExplicitURL bool
}

// ParseSumDB parses GOSUMDB syntax, "NAME[+KEY [URL]]" or "off" (nil, nil), as the go command does.
func ParseSumDB(spec string) (*SumDB, error) {
	spec = strings.TrimSpace(spec)
	if spec == "off" {
		return nil, nil
	}
	if spec == "" {
		spec = DefaultSumDBName
	}
	if spec == "sum.golang.google.cn" {
		spec = DefaultSumDBName + " https://sum.golang.google.cn"
	}
	fields := strings.Fields(spec)
	if len(fields) > 2 {
		return nil, fmt.Errorf("invalid checksum database %q: want NAME[+KEY [URL]]", spec)
	}
	key := fields[0]
	if k, ok := knownSumDBKeys[key]; ok {
		key = k
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("invalid checksum database key %q (a name without a key works only for %s): %w", fields[0], DefaultSumDBName, err)
	}
	db := &SumDB{Name: verifier.Name(), Key: key, URL: "https://" + verifier.Name()}
	if len(fields) == 2 {
		db.URL, db.ExplicitURL = strings.TrimRight(fields[1], "/"), true
		if !strings.HasPrefix(db.URL, "https://") && !strings.HasPrefix(db.URL, "http://") {
			return nil, fmt.Errorf("invalid checksum database URL %q", fields[1])
		}
	}
	return db, nil
}

// SumDBRemote returns how to reach db the way the go command does: at the URL GOSUMDB names if it
// names one; else through the upstream's /sumdb/<name>/ endpoint when the upstream answers
// /sumdb/<name>/supported, and only otherwise at the database's own URL. The choice is made on first use and kept once an answer is had.
func SumDBRemote(up *upstream.Client, db *SumDB, o upstream.Options) checksum.Remote {
	r := &sumdbRemote{up: up, db: db, opts: o}
	return r.read
}

type sumdbRemote struct {
	up   *upstream.Client
	db   *SumDB
	opts upstream.Options

	mu     sync.Mutex
	direct *upstream.Client // nil until chosen; then the client to use
	chosen bool
}

// maxSumDBAnswer bounds a lookup or tile answer: tiles are at most 8 KiB, lookups smaller.
const maxSumDBAnswer = 1 << 20

func (r *sumdbRemote) read(ctx context.Context, path string) ([]byte, error) {
	c, prefix, err := r.choose(ctx)
	if err != nil {
		return nil, err
	}
	return c.GetBytes(ctx, prefix+path, maxSumDBAnswer)
}

func (r *sumdbRemote) choose(ctx context.Context) (*upstream.Client, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	viaProxy := "sumdb/" + r.db.Name + "/"
	if r.chosen {
		if r.direct == nil {
			return r.up, viaProxy, nil
		}
		return r.direct, "", nil
	}
	if r.up != nil && !r.db.ExplicitURL {
		_, err := r.up.GetBytes(ctx, viaProxy+"supported", maxSumDBAnswer)
		if err == nil {
			r.chosen = true
			return r.up, viaProxy, nil
		}
		if !upstream.IsNotFound(err) {
			return nil, "", fmt.Errorf("ask the upstream whether it proxies checksum database %s: %w", r.db.Name, err)
		}
	}
	direct, err := upstream.New(r.db.URL, r.opts)
	if err != nil {
		return nil, "", fmt.Errorf("checksum database %s: %w", r.db.Name, err)
	}
	r.direct, r.chosen = direct, true
	return direct, "", nil
}
