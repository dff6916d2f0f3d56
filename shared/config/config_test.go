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
