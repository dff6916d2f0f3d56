// Package hybridsig signs and verifies with a hybrid of Ed25519 and ML-DSA-65 (FIPS 204): a
// signature holds one of each over the same message, and verifies only if both do, so that it
// stays sound as long as either scheme does (ML-DSA-65 against a quantum attacker, Ed25519 should
// ML-DSA turn out weaker than believed).
//
// Keys and signatures are one line of text that names its format version and scheme, so that
// another scheme can be added and an old reader fails clearly on a new one:
//
//	modmirror-private-key-v1 ed25519+mldsa65 <base64: Ed25519 seed, ML-DSA-65 seed>
//	modmirror-public-key-v1 ed25519+mldsa65 <key ID> <base64: Ed25519 key, ML-DSA-65 key>
//	modmirror-sig-v1 ed25519+mldsa65 <key ID> <base64: Ed25519 signature, ML-DSA-65 signature>
//
// The key ID is the first 16 hex digits of the SHA-256 of the encoded public key; it tells which
// key made a signature. Both schemes sign with a context string (Ed25519ctx, and ML-DSA's context),
// so a signature made for one purpose never verifies for another. ML-DSA-65 signs in its
// deterministic variant: the same key and message give the same signature, so that regenerating
// a mirror gives byte-identical files.
package hybridsig

import (
	"bytes"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Scheme is the name of the hybrid scheme in keys and signatures.
const Scheme = "ed25519+mldsa65"

// The first word of each kind of text.
const (
	privateTag   = "modmirror-private-key-v1"
	publicTag    = "modmirror-public-key-v1"
	signatureTag = "modmirror-sig-v1"
)

// Sizes of the encoded parts.
const (
	privateSize   = ed25519.SeedSize + mldsa65.SeedSize
	publicSize    = ed25519.PublicKeySize + mldsa65.PublicKeySize
	signatureSize = ed25519.SignatureSize + mldsa65.SignatureSize
)

// ErrVerify is wrapped by every error that says a signature does not verify.
var ErrVerify = errors.New("signature does not verify")

// PrivateKey is a hybrid signing key.
type PrivateKey struct {
	seeds [privateSize]byte
	ed    ed25519.PrivateKey
	ml    *mldsa65.PrivateKey
	pub   *PublicKey
}

// PublicKey is a hybrid verification key.
type PublicKey struct {
	ed  ed25519.PublicKey
	ml  *mldsa65.PublicKey
	raw []byte // Ed25519 key then packed ML-DSA-65 key
	id  string
}

// GenerateKey makes a new key from rand (crypto/rand.Reader if nil).
func GenerateKey(rand io.Reader) (*PrivateKey, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	var seeds [privateSize]byte
	if _, err := io.ReadFull(rand, seeds[:]); err != nil {
		return nil, fmt.Errorf("generate %s key: %w", Scheme, err)
	}
	return newPrivateKey(seeds), nil
}

func newPrivateKey(seeds [privateSize]byte) *PrivateKey {
	k := &PrivateKey{seeds: seeds}
	k.ed = ed25519.NewKeyFromSeed(seeds[:ed25519.SeedSize])
	var mlSeed [mldsa65.SeedSize]byte
	copy(mlSeed[:], seeds[ed25519.SeedSize:])
	mlPub, mlPriv := mldsa65.NewKeyFromSeed(&mlSeed)
	k.ml = mlPriv
	var packed [mldsa65.PublicKeySize]byte
	mlPub.Pack(&packed)
	raw := append(append([]byte{}, k.ed.Public().(ed25519.PublicKey)...), packed[:]...)
	k.pub = &PublicKey{ed: k.ed.Public().(ed25519.PublicKey), ml: mlPub, raw: raw, id: keyID(raw)}
	return k
}

func keyID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// Public returns the key's public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// MarshalText encodes the private key as one line, ending in a newline.
func (k *PrivateKey) MarshalText() ([]byte, error) {
	return []byte(privateTag + " " + Scheme + " " + base64.StdEncoding.EncodeToString(k.seeds[:]) + "\n"), nil
}

// ParsePrivateKey decodes what MarshalText wrote.
func ParsePrivateKey(text []byte) (*PrivateKey, error) {
	f, err := fields(text, privateTag, 3, "private key")
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(raw) != privateSize {
		return nil, fmt.Errorf("parse private key: malformed %s key (want %d bytes of base64)", Scheme, privateSize)
	}
	var seeds [privateSize]byte
	copy(seeds[:], raw)
	return newPrivateKey(seeds), nil
}

// ID returns the key's ID: 16 hex digits.
func (k *PublicKey) ID() string { return k.id }

// MarshalText encodes the public key as one line, ending in a newline.
func (k *PublicKey) MarshalText() ([]byte, error) {
	return []byte(publicTag + " " + Scheme + " " + k.id + " " + base64.StdEncoding.EncodeToString(k.raw) + "\n"), nil
}

// ParsePublicKey decodes what MarshalText wrote. A private key's text is refused: hand out only
// the public half.
func ParsePublicKey(text []byte) (*PublicKey, error) {
	if bytes.HasPrefix(bytes.TrimSpace(text), []byte(privateTag)) {
		return nil, errors.New("parse public key: this is a private key; give the .pub file")
	}
	f, err := fields(text, publicTag, 4, "public key")
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil || len(raw) != publicSize {
		return nil, fmt.Errorf("parse public key: malformed %s key (want %d bytes of base64)", Scheme, publicSize)
	}
	k := &PublicKey{raw: raw, id: keyID(raw)}
	if k.id != f[2] {
		return nil, fmt.Errorf("parse public key: key ID %s does not match the key (%s)", f[2], k.id)
	}
	k.ed = ed25519.PublicKey(raw[:ed25519.PublicKeySize])
	k.ml = new(mldsa65.PublicKey)
	if err := k.ml.UnmarshalBinary(raw[ed25519.PublicKeySize:]); err != nil {
		return nil, fmt.Errorf("parse public key: ML-DSA-65 part: %w", err)
	}
	return k, nil
}

// fields splits one line of text, checking its tag, scheme and number of fields.
func fields(text []byte, tag string, n int, what string) ([]string, error) {
	s := strings.TrimSpace(string(text))
	if strings.Contains(s, "\n") {
		return nil, fmt.Errorf("parse %s: want one line", what)
	}
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != tag {
		return nil, fmt.Errorf("parse %s: not a modmirror %s (want a line starting %q)", what, what, tag)
	}
	if len(f) < 2 || f[1] != Scheme {
		got := ""
		if len(f) >= 2 {
			got = f[1]
		}
		return nil, fmt.Errorf("parse %s: unknown scheme %q (this version knows %s)", what, got, Scheme)
	}
	if len(f) != n {
		return nil, fmt.Errorf("parse %s: want %d fields, have %d", what, n, len(f))
	}
	return f, nil
}

// Sign signs msg for the purpose named by context (at most 255 bytes) and returns the signature
// as one line of text, ending in a newline.
func (k *PrivateKey) Sign(msg []byte, context string) ([]byte, error) {
	if len(context) > 255 {
		return nil, errors.New("sign: context longer than 255 bytes")
	}
	edSig, err := k.ed.Sign(nil, msg, &ed25519.Options{Context: context})
	if err != nil {
		return nil, fmt.Errorf("sign: Ed25519: %w", err)
	}
	mlSig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(k.ml, msg, []byte(context), false, mlSig); err != nil {
		return nil, fmt.Errorf("sign: ML-DSA-65: %w", err)
	}
	raw := append(edSig, mlSig...)
	return []byte(signatureTag + " " + Scheme + " " + k.pub.id + " " + base64.StdEncoding.EncodeToString(raw) + "\n"), nil
}

// SignatureKeyID returns the key ID a signature names, or an error if it is not a signature.
func SignatureKeyID(sig []byte) (string, error) {
	f, err := fields(sig, signatureTag, 4, "signature")
	if err != nil {
		return "", err
	}
	return f[2], nil
}

// Verify checks that sig (as Sign returned it) signs msg for context with k: both the Ed25519 and
// the ML-DSA-65 signature must verify. A signature that does not verify is an error wrapping
// ErrVerify that says which part failed.
func (k *PublicKey) Verify(msg []byte, context string, sig []byte) error {
	f, err := fields(sig, signatureTag, 4, "signature")
	if err != nil {
		return err
	}
	if f[2] != k.id {
		return fmt.Errorf("%w: signed by key %s, not by the key given (%s)", ErrVerify, f[2], k.id)
	}
	raw, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil || len(raw) != signatureSize {
		return fmt.Errorf("%w: malformed %s signature (want %d bytes of base64)", ErrVerify, Scheme, signatureSize)
	}
	var failed []string
	if err := ed25519.VerifyWithOptions(k.ed, msg, raw[:ed25519.SignatureSize], &ed25519.Options{Context: context}); err != nil {
		failed = append(failed, "the Ed25519 signature does not verify")
	}
	if !mldsa65.Verify(k.ml, msg, []byte(context), raw[ed25519.SignatureSize:]) {
		failed = append(failed, "the ML-DSA-65 signature does not verify")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", ErrVerify, strings.Join(failed, "; "))
	}
	return nil
}
