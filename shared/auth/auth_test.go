package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	good := "# comment\n\nci " + HashToken("a") + " public,read:example.com/private|corp.example,warm\n" +
		"ro " + HashToken("b") + " public\n"
	tokens, err := ParseTokens([]byte(good))
	if err != nil || len(tokens) != 2 || tokens[0].ID != "ci" || len(tokens[0].Scopes) != 3 {
		t.Fatalf("ParseTokens = %+v, %v", tokens, err)
	}
	for _, bad := range []string{
		"ci a-token-not-a-hash public\n",
		"ci " + HashToken("a") + "\n",
		"ci " + HashToken("a") + " admin\n",
		"ci " + HashToken("a") + " read:\n",
		"ci " + HashToken("a") + " public\nci " + HashToken("b") + " public\n",
	} {
		if _, err := ParseTokens([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("ParseTokens(%q) = %v; want an error naming the line", bad, err)
		}
	}
}

func TestTokens(t *testing.T) {
	tokens, err := ParseTokens([]byte(
		"ci " + HashToken("ci-secret") + " public,read:example.com/private|*.corp.example\n" +
			"ro " + HashToken("ro-secret") + " public\n" +
			"w " + HashToken("warm-secret") + " warm\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(tokens, false)
	req := func(h string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}
	basic := func(secret string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth("whoever", secret)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name       string
		header     string
		module     string
		private    bool
		wantErr    bool
		wantID     string
		read, warm bool
	}{
		{"anonymous, public, anonymous reads off", "", "example.com/lib", false, false, "", false, false},
		{"bearer ci, private match", "Bearer ci-secret", "example.com/private/x", true, false, "ci", true, false},
		{"basic ci, private glob", basic("ci-secret"), "git.corp.example/y", true, false, "ci", true, false},
		{"basic ci, other private", basic("ci-secret"), "other.example/z", true, false, "ci", false, false},
		{"ro, private", "Bearer ro-secret", "example.com/private/x", true, false, "ro", false, false},
		{"ro, public", "Bearer ro-secret", "example.com/lib", false, false, "ro", true, false},
		{"warm token", "Bearer warm-secret", "example.com/lib", false, false, "w", false, true},
		{"wrong secret", "Bearer nope", "example.com/lib", false, true, "", false, false},
		{"garbage basic", "Basic !!!", "example.com/lib", false, true, "", false, false},
		{"other scheme", "Digest x", "example.com/lib", false, true, "", false, false},
	}
	forwarded := httptest.NewRequest(http.MethodGet, "/", nil)
	forwarded.Header.Set(ForwardedAuthorizationHeader, "Bearer ci-secret")
	forwarded.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=cdn-signature")
	if c, err := a.Identify(forwarded); err != nil || c.ID != "ci" {
		t.Errorf("credentials forwarded past a CDN's own Authorization: %+v, %v; want token ci", c, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.Identify(req(tt.header))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Identify: %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if c.ID != tt.wantID {
				t.Errorf("ID %q; want %q", c.ID, tt.wantID)
			}
			if got := a.MayRead(c, tt.module, tt.private); got != tt.read {
				t.Errorf("MayRead(%s, private=%v) = %v; want %v", tt.module, tt.private, got, tt.read)
			}
			if got := a.MayWarm(c); got != tt.warm {
				t.Errorf("MayWarm = %v; want %v", got, tt.warm)
			}
		})
	}
	if c, _ := New(tokens, true).Identify(req("")); !New(tokens, true).MayRead(c, "example.com/lib", false) {
		t.Error("anonymous reads on: an anonymous caller cannot read a public module")
	}
}
