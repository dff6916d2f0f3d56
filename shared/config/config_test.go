package config

import (
	"flag"
	"testing"
)

func TestUpstreamList(t *testing.T) {
	tests := map[string]string{
		"https://a.example,direct":                "https://a.example",
		"https://a.example|https://b.example,off": "https://a.example|https://b.example",
		"direct":                              "",
		"off":                                 "",
		"":                                    "",
		"direct,https://a.example":            "https://a.example",
		"https://a.example,https://b.example": "https://a.example,https://b.example",
		" https://a.example , https://b.example ,": "https://a.example,https://b.example",
		"file:///srv/mirror|https://a.example":     "file:///srv/mirror|https://a.example",
	}
	for in, want := range tests {
		if got := UpstreamList(in); got != want {
			t.Errorf("UpstreamList(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestParseSumDB(t *testing.T) {
	const testKey = "sumdb.test+d704ce89+AQmry6Z68+3tf5VW9vN6y70IbQOi7npIr1JuQTnMjAzv"
	tests := []struct {
		spec     string
		name     string
		url      string
		explicit bool
		off      bool
		err      bool
	}{
		{spec: "off", off: true},
		{spec: "", name: DefaultSumDBName, url: "https://" + DefaultSumDBName},
		{spec: DefaultSumDBName, name: DefaultSumDBName, url: "https://" + DefaultSumDBName},
		{spec: testKey, name: "sumdb.test", url: "https://sumdb.test"},
		{spec: testKey + " http://127.0.0.1:9/db/", name: "sumdb.test", url: "http://127.0.0.1:9/db", explicit: true},
		{spec: "unknown.example", err: true},
		{spec: testKey + " ftp://x", err: true},
		{spec: "a b c", err: true},
	}
	for _, tt := range tests {
		db, err := ParseSumDB(tt.spec)
		if tt.err {
			if err == nil {
				t.Errorf("ParseSumDB(%q) = %+v; want an error", tt.spec, db)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSumDB(%q): %v", tt.spec, err)
			continue
		}
		if tt.off {
			if db != nil {
				t.Errorf("ParseSumDB(%q) = %+v; want nil (off)", tt.spec, db)
			}
			continue
		}
		if db.Name != tt.name || db.URL != tt.url || db.ExplicitURL != tt.explicit || db.Key == "" {
			t.Errorf("ParseSumDB(%q) = %+v; want name %q url %q explicit %v", tt.spec, db, tt.name, tt.url, tt.explicit)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	publicURL := fs.String("public-url", "", "")
	listen := fs.String("listen", "default", "")
	offline := fs.Bool("offline", false, "")
	if err := fs.Parse([]string{"-listen", "flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODMIRROR_PUBLIC_URL": "https://cdn.example", "MODMIRROR_LISTEN": "env", "MODMIRROR_OFFLINE": "true"}
	if err := ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *publicURL != "https://cdn.example" || *listen != "flag" || !*offline {
		t.Fatalf("got public-url %q listen %q offline %v; want the environment only where no flag was given", *publicURL, *listen, *offline)
	}
	env["MODMIRROR_OFFLINE"] = "maybe"
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Bool("offline", false, "")
	if err := ApplyEnv(fs2, func(k string) string { return env[k] }); err == nil {
		t.Fatal("MODMIRROR_OFFLINE=maybe accepted; want an error naming it")
	}
}

func TestNetrcCredentials(t *testing.T) {
	netrc := ParseNetrc([]byte("machine git.corp.example login ci password s3cret\n\nmachine other.example:8443\n  login bot\n  password two\ndefault login x password y\n"))
	if len(netrc) != 2 || netrc[0] != (NetrcEntry{"git.corp.example", "ci", "s3cret"}) || netrc[1] != (NetrcEntry{"other.example:8443", "bot", "two"}) {
		t.Fatalf("ParseNetrc = %+v", netrc)
	}
	tests := map[string]string{
		"https://git.corp.example/mod":                     "https://ci:s3cret@git.corp.example/mod",
		"https://other.example:8443|https://none.example":  "https://bot:two@other.example:8443|https://none.example",
		"https://me:mine@git.corp.example":                 "https://me:mine@git.corp.example",
		"file:///srv/mirror,https://git.corp.example:9000": "file:///srv/mirror,https://ci:s3cret@git.corp.example:9000",
	}
	for in, want := range tests {
		if got := WithNetrcCredentials(in, netrc); got != want {
			t.Errorf("WithNetrcCredentials(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSettingsGoEnvDefaults(t *testing.T) {
	s := Settings{SumDB: "off"}
	err := s.ResolveGoEnv(func() (GoEnv, error) {
		return GoEnv{GOPROXY: "https://a.example,direct", GOSUMDB: "sum.example", GOPRIVATE: "corp.example"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Upstream != "https://a.example" || s.SumDB != "off" || s.Private != "corp.example" {
		t.Fatalf("resolved %+v; want the go env only where unset", s)
	}
}

func TestFileOrContent(t *testing.T) {
	read := FileOrContent(func(name string) ([]byte, error) { return []byte("file:" + name), nil })
	for in, want := range map[string]string{
		"/etc/modmirror/tokens":          "file:/etc/modmirror/tokens",
		"ci 0123abcd public":             "ci 0123abcd public",
		"a\tb":                           "a\tb",
		"ci 01 public\nro 02 read:x.com": "ci 01 public\nro 02 read:x.com",
	} {
		got, err := read(in)
		if err != nil || string(got) != want {
			t.Errorf("FileOrContent(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
