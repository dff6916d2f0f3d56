package hybridsig

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// seeded returns a deterministic key.
func seeded(t *testing.T, b byte) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, privateSize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := seeded(t, 1)
	privText, _ := k.MarshalText()
	pubText, _ := k.Public().MarshalText()
	k2, err := ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID() != k.Public().ID() || k2.Public().ID() != k.Public().ID() {
		t.Fatalf("key IDs differ after a round trip")
	}
	msg := []byte("manifest")
	sig, err := k2.Sign(msg, "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sig), "modmirror-sig-v1 ed25519+mldsa65 "+pub.ID()+" ") {
		t.Errorf("signature does not name scheme and key: %q", sig)
	}
	if err := pub.Verify(msg, "ctx", sig); err != nil {
		t.Fatal(err)
	}
	again, _ := k.Sign(msg, "ctx")
	if !bytes.Equal(again, sig) {
		t.Errorf("signing is not deterministic")
	}
	if id, err := SignatureKeyID(sig); err != nil || id != pub.ID() {
		t.Errorf("SignatureKeyID = %q, %v", id, err)
	}
}

func TestVerifyFails(t *testing.T) {
	k := seeded(t, 1)
	msg := []byte("manifest")
	sig, _ := k.Sign(msg, "ctx")
	flip := func(i int) []byte {
		f := strings.Fields(string(sig))
		raw, _ := base64.StdEncoding.DecodeString(f[3])
		raw[i] ^= 1
		f[3] = base64.StdEncoding.EncodeToString(raw)
		return []byte(strings.Join(f, " "))
	}
	other := seeded(t, 2).Public()
	for _, tc := range []struct {
		name    string
		pub     *PublicKey
		msg     []byte
		context string
		sig     []byte
		want    string
	}{
		{"other message", k.Public(), []byte("manifest!"), "ctx", sig, "the Ed25519 signature does not verify; the ML-DSA-65 signature does not verify"},
		{"other context", k.Public(), msg, "other", sig, "the Ed25519 signature does not verify; the ML-DSA-65 signature does not verify"},
		{"Ed25519 half", k.Public(), msg, "ctx", flip(0), "signature does not verify: the Ed25519 signature does not verify"},
		{"ML-DSA-65 half", k.Public(), msg, "ctx", flip(64 + 7), "signature does not verify: the ML-DSA-65 signature does not verify"},
		{"other key", other, msg, "ctx", sig, "signed by key " + k.Public().ID()},
		{"truncated", k.Public(), msg, "ctx", sig[:200], "malformed"},
		{"unknown scheme", k.Public(), msg, "ctx", bytes.Replace(sig, []byte(Scheme), []byte("ed448+slhdsa"), 1), `unknown scheme "ed448+slhdsa"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pub.Verify(tc.msg, tc.context, tc.sig)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if err := other.Verify(msg, "ctx", sig); !errors.Is(err, ErrVerify) {
		t.Errorf("a wrong key's error does not wrap ErrVerify: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	k := seeded(t, 3)
	priv, _ := k.MarshalText()
	pub, _ := k.Public().MarshalText()
	for _, tc := range []struct {
		name string
		fn   func([]byte) error
		text string
		want string
	}{
		{"private as public", pubParse, string(priv), "this is a private key"},
		{"public as private", privParse, string(pub), "not a modmirror private key"},
		{"unknown scheme", pubParse, strings.Replace(string(pub), Scheme, "rsa", 1), `unknown scheme "rsa"`},
		{"wrong key ID", pubParse, strings.Replace(string(pub), k.Public().ID(), "0000000000000000", 1), "does not match the key"},
		{"short key", privParse, "modmirror-private-key-v1 ed25519+mldsa65 AAAA\n", "malformed"},
		{"two lines", pubParse, string(pub) + string(pub), "want one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fn([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func pubParse(b []byte) error  { _, err := ParsePublicKey(b); return err }
func privParse(b []byte) error { _, err := ParsePrivateKey(b); return err }
