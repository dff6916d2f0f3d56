package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/modmirror/modmirror/shared/auth"
	"github.com/modmirror/modmirror/shared/checksum"
	"github.com/modmirror/modmirror/shared/proxy"
	"github.com/modmirror/modmirror/shared/store"
	"github.com/modmirror/modmirror/shared/upstream"
)

// Settings are the proxy settings every host shares. A host registers them on its FlagSet, applies the environment, resolves the go env defaults,
// and builds its proxy.Config with Proxy.
type Settings struct {
	Upstream        string // GOPROXY syntax
	SumDB           string // GOSUMDB syntax, or off
	Offline         bool
	PublicURL       string
	Private         string // GOPRIVATE syntax
	PrivateUpstream string // GOPROXY syntax; credentials in the URL or from Netrc
	Netrc           string // a .netrc file with credentials for the private upstream
	PrivateGoSum    string // a go.sum file private modules are checked against
	Tokens          string // the token file: ID SHA256-OF-TOKEN SCOPES
	Anonymous       bool   // public reads without a token
	// UpstreamIdleTimeout abandons an upstream body that sends no byte for this long.
	UpstreamIdleTimeout time.Duration
}

// Register defines the shared flags on fs.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Upstream, "upstream", "", "upstream proxies in GOPROXY syntax (default: go env GOPROXY)")
	fs.StringVar(&s.SumDB, "sumdb", "", "checksum database NAME[+KEY [URL]], or off (default: go env GOSUMDB)")
	fs.BoolVar(&s.Offline, "offline", false, "serve the store only, never the upstream")
	fs.StringVar(&s.PublicURL, "public-url", "", "the CDN base URL a host may redirect hits to")
	fs.StringVar(&s.Private, "private", "", "private module path patterns, GOPRIVATE syntax (default: go env GOPRIVATE)")
	fs.StringVar(&s.PrivateUpstream, "private-upstream", "", "upstream for private modules, GOPROXY syntax")
	fs.StringVar(&s.Netrc, "netrc", "", "a .netrc file with credentials for the private upstream")
	fs.StringVar(&s.PrivateGoSum, "private-gosum", "", "a go.sum that private modules are checked against")
	fs.StringVar(&s.Tokens, "tokens", "", "token file: one `ID SHA256-OF-TOKEN SCOPE[,SCOPE]` a line")
	fs.BoolVar(&s.Anonymous, "anonymous", true, "allow public reads without a token")
	fs.DurationVar(&s.UpstreamIdleTimeout, "upstream-idle-timeout", upstream.DefaultIdleTimeout, "abandon an upstream answer that sends no byte for this long")
}

// ResolveGoEnv fills the upstream, checksum database and private patterns left unset from
// the toolchain's go env.
func (s *Settings) ResolveGoEnv(read func() (GoEnv, error)) error {
	if s.Upstream != "" && s.SumDB != "" && s.Private != "" {
		return nil
	}
	env, err := read()
	if err != nil && s.Upstream == "" && !s.Offline {
		return fmt.Errorf("no -upstream given and %w", err)
	}
	if s.Upstream == "" {
		s.Upstream = UpstreamList(env.GOPROXY)
	}
	if s.SumDB == "" {
		s.SumDB = env.GOSUMDB
	}
	if s.Private == "" {
		s.Private = env.GOPRIVATE
	}
	return nil
}

// Parts is what Proxy builds besides the proxy.Config, for hosts that need them.
type Parts struct {
	Upstream *upstream.Client // nil offline
	SumDB    *SumDB           // nil when off
}

// Proxy builds the proxy.Config for st. readFile reads the token, netrc and go.sum files (hosts
// without a file system pass a function that reads secrets instead).
func (s *Settings) Proxy(ctx context.Context, st store.Store, logger *slog.Logger, readFile func(string) ([]byte, error), upOpts upstream.Options) (proxy.Config, Parts, error) {
	var parts Parts
	cfg := proxy.Config{Store: st, Logger: logger}
	if upOpts.Logger == nil {
		upOpts.Logger = logger
	}
	if upOpts.IdleTimeout == 0 {
		upOpts.IdleTimeout = s.UpstreamIdleTimeout
	}
	if !s.Offline {
		if s.Upstream == "" {
			return cfg, parts, errors.New("no upstream proxy: set -upstream or GOPROXY, or serve the store with -offline")
		}
		up, err := upstream.New(s.Upstream, upOpts)
		if err != nil {
			return cfg, parts, err
		}
		cfg.Upstream, parts.Upstream = up, up
		if s.PrivateUpstream != "" {
			list := s.PrivateUpstream
			if s.Netrc != "" {
				data, err := readFile(s.Netrc)
				if err != nil {
					return cfg, parts, fmt.Errorf("read -netrc: %w", err)
				}
				list = WithNetrcCredentials(list, ParseNetrc(data))
			}
			priv, err := upstream.New(list, upOpts)
			if err != nil {
				return cfg, parts, fmt.Errorf("-private-upstream: %w", err)
			}
			cfg.PrivateUpstream = priv
		}
	}
	db, err := ParseSumDB(s.SumDB)
	if err != nil {
		return cfg, parts, err
	}
	if db != nil {
		parts.SumDB = db
		dbc := checksum.DBConfig{Name: db.Name, Key: db.Key, Store: st, Logger: logger, NoSumDB: s.Private}
		if parts.Upstream != nil {
			dbc.Remote = SumDBRemote(parts.Upstream, db, upOpts)
		}
		if cfg.Checksums, err = checksum.NewDB(dbc); err != nil {
			return cfg, parts, err
		}
	}
	cfg.Private = s.Private
	if s.PrivateGoSum != "" {
		data, err := readFile(s.PrivateGoSum)
		if err != nil {
			return cfg, parts, fmt.Errorf("read -private-gosum: %w", err)
		}
		if cfg.PrivateGoSum, err = checksum.ParseGoSum(data); err != nil {
			return cfg, parts, fmt.Errorf("-private-gosum %s: %w", s.PrivateGoSum, err)
		}
	}
	var tokens []auth.Token
	if s.Tokens != "" {
		data, err := readFile(s.Tokens)
		if err != nil {
			return cfg, parts, fmt.Errorf("read -tokens: %w", err)
		}
		if tokens, err = auth.ParseTokens(data); err != nil {
			return cfg, parts, fmt.Errorf("-tokens %s: %w", s.Tokens, err)
		}
	}
	cfg.Auth = auth.New(tokens, s.Anonymous)
	return cfg, parts, nil
}

// NetrcEntry is one machine of a .netrc file.
type NetrcEntry struct{ Machine, Login, Password string }

// ParseNetrc reads the machine, login and password tokens of a .netrc file.
func ParseNetrc(data []byte) []NetrcEntry {
	var entries []NetrcEntry
	var cur *NetrcEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(bufio.ScanWords)
	var words []string
	for sc.Scan() {
		words = append(words, sc.Text())
	}
	for i := 0; i+1 < len(words); i++ {
		switch words[i] {
		case "machine":
			entries = append(entries, NetrcEntry{Machine: words[i+1]})
			cur = &entries[len(entries)-1]
			i++
		case "default":
			cur = nil
		case "login", "password":
			if cur != nil {
				if words[i] == "login" {
					cur.Login = words[i+1]
				} else {
					cur.Password = words[i+1]
				}
			}
			i++
		}
	}
	return entries
}

// WithNetrcCredentials adds credentials from netrc to the http(s) URLs of a GOPROXY list that
// have none, matching the URL's host (with or without its port) against the machine names.
func WithNetrcCredentials(list string, netrc []NetrcEntry) string {
	return mapList(list, func(entry string) string {
		u, err := url.Parse(entry)
		if err != nil || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return entry
		}
		for _, n := range netrc {
			if n.Machine == u.Host || n.Machine == u.Hostname() {
				u.User = url.UserPassword(n.Login, n.Password)
				return u.String()
			}
		}
		return entry
	})
}

// FileOrContent wraps readFile for hosts whose settings come from environment variables (Lambda):
// a value that holds a space or a line break is the file's content itself (token, go.sum and
// .netrc lines always do), anything else names a file.
func FileOrContent(readFile func(string) ([]byte, error)) func(string) ([]byte, error) {
	return func(value string) ([]byte, error) {
		if strings.ContainsAny(value, " \t\n") {
			return []byte(value), nil
		}
		return readFile(value)
	}
}
