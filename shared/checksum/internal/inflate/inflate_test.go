package inflate_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"go/build"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/modmirror/modmirror/shared/checksum/internal/inflate"
)

// goSource returns up to limit bytes of the standard library's Go source: text as module zips
// hold.
func goSource(tb testing.TB, limit int) []byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(build.Default.GOROOT, "src", "net", "http", "*.go"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no Go source in GOROOT %q: %v", build.Default.GOROOT, err)
	}
	var buf bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		buf.Write(data)
		if buf.Len() >= limit {
			break
		}
	}
	return buf.Bytes()[:min(buf.Len(), limit)]
}

// inputs are payloads of the kinds a module zip holds, and of the kinds that reach each path of
// a decoder: empty, tiny, text, random (stored blocks), runs (long overlapping matches).
func inputs(tb testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	runs := make([]byte, 0, 200<<10)
	for len(runs) < 200<<10 {
		runs = append(runs, bytes.Repeat([]byte{byte(rng.IntN(4))}, 1+rng.IntN(600))...)
	}
	text := goSource(tb, 1<<20)
	mixed := append(append(append([]byte{}, text[:100<<10]...), random[:70<<10]...), text[200<<10:400<<10]...)
	return map[string][]byte{
		"empty":  nil,
		"byte":   {'x'},
		"hello":  []byte("hello, hello, hello world\n"),
		"text":   text,
		"random": random,
		"runs":   runs,
		"zeros":  make([]byte, 150<<10),
		"mixed":  mixed,
	}
}

func deflate(tb testing.TB, data []byte, level int, flushEvery int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		tb.Fatal(err)
	}
	for len(data) > 0 {
		n := len(data)
		if flushEvery > 0 {
			n = min(n, flushEvery)
		}
		w.Write(data[:n])
		data = data[n:]
		if flushEvery > 0 {
			w.Flush() // an empty stored block, and a new block after it
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decode decodes stream with a Reader read through readSize-byte reads, its input coming through
// wrap.
func decode(r *inflate.Reader, stream []byte, wrap func(io.Reader) io.Reader, readSize int) ([]byte, error) {
	r.Reset(wrap(bytes.NewReader(stream)))
	var out bytes.Buffer
	buf := make([]byte, readSize)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestRoundTrip(t *testing.T) {
	levels := []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression}
	wraps := map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
	}
	r := inflate.NewReader(nil) // one Reader for every case: Reset must leave nothing behind
	for name, data := range inputs(t) {
		for _, level := range levels {
			for _, flush := range []int{0, 7 << 10} {
				stream := deflate(t, data, level, flush)
				for wname, wrap := range wraps {
					for _, readSize := range []int{1, 4093, 32 << 10} {
						if wname == "onebyte" && len(data) > 64<<10 && readSize == 1 {
							continue // slow, and no different from the other one-byte cases
						}
						got, err := decode(r, stream, wrap, readSize)
						if err != nil || !bytes.Equal(got, data) {
							t.Fatalf("%s, level %d, flush %d, %s input, %d-byte reads: got %d bytes (equal: %v), %v; want %d bytes",
								name, level, flush, wname, readSize, len(got), bytes.Equal(got, data), err, len(data))
						}
					}
				}
			}
		}
	}
}

// TestLikeCompressFlate breaks valid streams (bit flips, cuts, random bytes) and checks that the
// Reader accepts and rejects what compress/flate does, with the same output when both accept.
func TestLikeCompressFlate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var streams [][]byte
	for _, data := range inputs(t) {
		if len(data) > 40<<10 {
			data = data[:40<<10] // enough for every kind of block, and fast to break many times
		}
		for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
			streams = append(streams, deflate(t, data, level, 0))
		}
	}
	r := inflate.NewReader(nil)
	cases, rejected := 0, 0
	for range 6000 {
		stream := bytes.Clone(streams[rng.IntN(len(streams))])
		switch rng.IntN(4) {
		case 0: // flip bits
			for range 1 + rng.IntN(3) {
				if len(stream) > 0 {
					stream[rng.IntN(len(stream))] ^= 1 << rng.IntN(8)
				}
			}
		case 1: // cut short
			stream = stream[:rng.IntN(len(stream)+1)]
		case 2: // flip a bit in the first bytes, where the block headers and tables are
			if len(stream) > 0 {
				stream[rng.IntN(min(len(stream), 64))] ^= 1 << rng.IntN(8)
			}
		default: // random bytes
			stream = make([]byte, rng.IntN(300))
			for i := range stream {
				stream[i] = byte(rng.Uint32())
			}
		}
		want, wantErr := io.ReadAll(flate.NewReader(bytes.NewReader(stream)))
		got, err := decode(r, stream, func(r io.Reader) io.Reader { return r }, 32<<10)
		cases++
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("stream %x:\ncompress/flate: %d bytes, %v\ninflate: %d bytes, %v", stream, len(want), wantErr, len(got), err)
		}
		if err != nil {
			rejected++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("stream %x: output differs from compress/flate's (%d and %d bytes)", stream, len(got), len(want))
		}
	}
	if rejected == 0 || rejected == cases {
		t.Errorf("%d of %d broken streams rejected: the cases do not reach both outcomes", rejected, cases)
	}
}

func TestErrors(t *testing.T) {
	valid := deflate(t, []byte("hello, hello, hello world\n"), flate.BestCompression, 0)
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty input", nil, io.ErrUnexpectedEOF},
		{"cut short", valid[:len(valid)-1], io.ErrUnexpectedEOF},
		{"reserved block type", []byte{0x07}, inflate.ErrCorrupt},
		{"stored length and its complement disagree", []byte{0x01, 0x05, 0x00, 0x00, 0x00}, inflate.ErrCorrupt},
		{"stored block cut short", []byte{0x01, 0x05, 0x00, 0xfa, 0xff, 'a', 'b'}, io.ErrUnexpectedEOF},
		// A fixed block whose first symbol is a match (length 3, distance 1) with no output before it.
		{"distance before the start", []byte{0x03, 0x02, 0x00}, inflate.ErrCorrupt},
	}
	r := inflate.NewReader(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(r, tt.stream, func(r io.Reader) io.Reader { return r }, 100)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if _, wantErr := io.ReadAll(flate.NewReader(bytes.NewReader(tt.stream))); wantErr == nil {
				t.Errorf("compress/flate accepts the stream: the case tests nothing")
			}
		})
	}
}

func FuzzLikeCompressFlate(f *testing.F) {
	for _, data := range inputs(f) {
		f.Add(deflate(f, data[:min(len(data), 2000)], flate.BestSpeed, 0))
		f.Add(deflate(f, data[:min(len(data), 2000)], flate.HuffmanOnly, 0))
	}
	r := inflate.NewReader(nil)
	f.Fuzz(func(t *testing.T, stream []byte) {
		want, wantErr := io.ReadAll(flate.NewReader(bytes.NewReader(stream)))
		got, err := decode(r, stream, func(r io.Reader) io.Reader { return r }, 32<<10)
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("compress/flate: %d bytes, %v; inflate: %d bytes, %v", len(want), wantErr, len(got), err)
		}
	})
}

// BenchmarkInflate decodes deflated Go source, as module zips hold, with this package and with
// compress/flate.
func BenchmarkInflate(b *testing.B) {
	text := goSource(b, 4<<20)
	stream := deflate(b, text, flate.DefaultCompression, 0)
	buf := make([]byte, 32<<10)
	b.Run("inflate", func(b *testing.B) {
		r := inflate.NewReader(nil)
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			r.Reset(bytes.NewReader(stream))
			if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compress-flate", func(b *testing.B) {
		r := flate.NewReader(nil)
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			r.(flate.Resetter).Reset(bytes.NewReader(stream), nil)
			if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
