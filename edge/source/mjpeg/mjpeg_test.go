package mjpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"testing/iotest"
)

// encode returns a baseline JPEG of a w x h image with some detail, so
// that the entropy-coded data holds stuffed 0xFF bytes.
func encode(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), uint8(rng.IntN(256)), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withExif returns jpg with an APP1 EXIF segment, holding thumb, right
// after its SOI, as cameras write it.
func withExif(t testing.TB, jpg, thumb []byte) []byte {
	t.Helper()
	payload := append([]byte("Exif\x00\x00II*\x00\x08\x00\x00\x00"), thumb...)
	if len(payload)+2 > 0xFFFF {
		t.Fatal("thumbnail too large for an APP1 segment")
	}
	n := len(payload) + 2
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte(n >> 8), byte(n)}
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// withFill inserts fill bytes before the marker that follows SOI.
func withFill(jpg []byte) []byte {
	out := []byte{0xFF, 0xD8, 0xFF, 0xFF, 0xFF}
	return append(out, jpg[2:]...)
}

// readFile reads a JPEG from testdata. They were made from
// `ffmpeg -f lavfi -i testsrc=size=64x48 -frames:v 1 -c:v mjpeg base.jpg`
// with `jpegtran -progressive`, `jpegtran -progressive -restart 1` and
// `jpegtran -restart 1`.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// result is what one call of Next should return: a frame or an error.
type result struct {
	frame []byte
	err   error
}

func TestScanner(t *testing.T) {
	a := encode(t, 32, 24, 1)
	b := encode(t, 48, 32, 2)
	c := encode(t, 16, 16, 3)
	thumb := encode(t, 8, 8, 4)
	exif := withExif(t, b, thumb)
	big := encode(t, 160, 120, 5)
	progressive := readFile(t, "progressive.jpg")
	// image/jpeg cannot decode this one; djpeg can.
	progressiveRST := readFile(t, "progressive_restart.jpg")
	baselineRST := readFile(t, "baseline_restart.jpg")
	garbage := []byte("garbage\xff\x00\xff\xd9\xff\xff junk \xff")
	// A stray SOI in garbage starts a bogus frame that must not swallow
	// the real frame after it.
	stray := []byte{0xFF, 0xD8, 0x12, 0x34}
	// A frame cut off inside its scan, then a new frame: a camera glitch.
	cut := a[:len(a)-40]

	eof := result{err: io.EOF}
	tests := []struct {
		name   string
		stream []byte
		max    int
		want   []result
	}{
		{"empty", nil, 0, []result{eof}},
		{"garbage only", garbage, 0, []result{eof}},
		{"one", a, 0, []result{{frame: a}, eof}},
		{"three", cat(a, b, c), 0, []result{{frame: a}, {frame: b}, {frame: c}, eof}},
		{"garbage around", cat(garbage, a, garbage, b, garbage), 0,
			[]result{{frame: a}, {frame: b}, eof}},
		{"exif thumbnail", cat(exif, a), 0, []result{{frame: exif}, {frame: a}, eof}},
		{"fill bytes", cat(withFill(a), b), 0, []result{{frame: withFill(a)}, {frame: b}, eof}},
		{"progressive", cat(progressive, a, progressive), 0,
			[]result{{frame: progressive}, {frame: a}, {frame: progressive}, eof}},
		{"progressive with restarts", cat(progressiveRST, progressiveRST), 0,
			[]result{{frame: progressiveRST}, {frame: progressiveRST}, eof}},
		{"baseline with restarts", cat(baselineRST, baselineRST), 0,
			[]result{{frame: baselineRST}, {frame: baselineRST}, eof}},
		{"truncated", cat(a, b[:len(b)/2]), 0,
			[]result{{frame: a}, {err: io.ErrUnexpectedEOF}, eof}},
		{"truncated in header", cat(a, b[:5]), 0,
			[]result{{frame: a}, {err: io.ErrUnexpectedEOF}, eof}},
		{"lone SOI at end", cat(a, []byte{0xFF, 0xD8}), 0,
			[]result{{frame: a}, {err: io.ErrUnexpectedEOF}, eof}},
		{"cut short by SOI", cat(cut, b), 0, []result{{frame: b}, eof}},
		// Rescanning the broken frame would find the thumbnail.
		{"exif cut short by SOI", cat(exif[:len(exif)-40], a), 0, []result{{frame: a}, eof}},
		{"stray SOI", cat(stray, a, stray, b), 0, []result{{frame: a}, {frame: b}, eof}},
		{"too large", cat(a, big, b), len(b) + 100,
			[]result{{frame: a}, {err: ErrFrameTooLarge}, {frame: b}, eof}},
		{"too large, cut short by SOI", cat(big[:len(big)-40], b), len(b) + 100,
			[]result{{err: ErrFrameTooLarge}, {frame: b}, eof}},
		{"too large, truncated", cat(a, big[:len(big)-40]), len(a) + 100,
			[]result{{frame: a}, {err: io.ErrUnexpectedEOF}, eof}},
		{"exactly the limit", cat(a, b), len(a),
			[]result{{frame: a}, {err: ErrFrameTooLarge}, eof}},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				s := NewScanner(rd.wrap(bytes.NewReader(tt.stream)), tt.max)
				for i, want := range tt.want {
					got, err := s.Next()
					if want.err != nil {
						if !errors.Is(err, want.err) {
							t.Fatalf("Next #%d: got (%d bytes, %v), want error %v", i, len(got), err, want.err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("Next #%d: %v", i, err)
					}
					if !bytes.Equal(got, want.frame) {
						t.Fatalf("Next #%d: got %d bytes, want %d", i, len(got), len(want.frame))
					}
					if bytes.Equal(got, progressiveRST) {
						continue
					}
					if _, err := jpeg.Decode(bytes.NewReader(got)); err != nil {
						t.Errorf("Next #%d: frame does not decode: %v", i, err)
					}
				}
			})
		}
	}
}

func TestScannerReadError(t *testing.T) {
	a := encode(t, 32, 24, 1)
	boom := errors.New("boom")
	s := NewScanner(io.MultiReader(bytes.NewReader(a), iotest.ErrReader(boom)), 0)
	if got, err := s.Next(); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("Next = %d bytes, %v; want the frame", len(got), err)
	}
	for range 2 {
		if _, err := s.Next(); err != boom {
			t.Fatalf("Next: got %v, want %v", err, boom)
		}
	}
}

func TestScannerNoProgress(t *testing.T) {
	s := NewScanner(emptyReader{}, 0)
	if _, err := s.Next(); err != io.ErrNoProgress {
		t.Fatalf("Next: got %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestScannerBounded checks that a long frame without an end is not kept
// in memory.
func TestScannerBounded(t *testing.T) {
	const limit = 64 << 10
	// SOI, SOS, then 16 MiB of entropy-coded data and no EOI.
	head := []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}
	r := io.MultiReader(bytes.NewReader(head), io.LimitReader(zeros{}, 16<<20))
	s := NewScanner(r, limit)
	if _, err := s.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("Next: got %v, want io.ErrUnexpectedEOF", err)
	}
	if len(s.buf) > 4*limit {
		t.Errorf("buffer grew to %d bytes for a limit of %d", len(s.buf), limit)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// loop repeats data forever without allocating.
type loop struct {
	data []byte
	off  int
}

func (l *loop) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestScannerNoAllocs(t *testing.T) {
	stream := cat(encode(t, 64, 48, 1), []byte("junk"), encode(t, 80, 60, 2))
	s := NewScanner(&loop{data: stream}, 0)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %v times per frame, want 0", allocs)
	}
}

func FuzzScanner(f *testing.F) {
	a := encode(f, 32, 24, 1)
	b := encode(f, 16, 16, 2)
	progressive := readFile(f, "progressive_restart.jpg")
	f.Add(a, 0)
	f.Add(cat(a, []byte("garbage"), b), 0)
	f.Add(cat(withExif(f, a, b), b), 0)
	f.Add(cat(progressive, a[:len(a)/2], b), 0)
	f.Add(cat(a, b), len(b)+1)
	f.Add(withFill(b), 0)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max %= 4 << 10
		s := NewScanner(bytes.NewReader(data), max)
		if max <= 0 {
			max = DefaultMaxFrame
		}
		// Every call consumes at least one byte, so this bounds the loop.
		for range len(data) + 2 {
			frame, err := s.Next()
			if errors.Is(err, ErrFrameTooLarge) {
				continue
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(frame) > max {
				t.Fatalf("frame of %d bytes exceeds the limit of %d", len(frame), max)
			}
			if len(frame) < 4 || !bytes.HasPrefix(frame, []byte{0xFF, 0xD8}) || !bytes.HasSuffix(frame, []byte{0xFF, 0xD9}) {
				t.Fatalf("frame % x is not SOI..EOI", frame)
			}
		}
		t.Fatal("Next did not reach the end of the stream")
	})
}

func BenchmarkScanner(b *testing.B) {
	var stream []byte
	const n = 8
	for i := range n {
		stream = append(stream, encode(b, 640, 480, uint64(i))...)
	}
	s := NewScanner(&loop{data: stream}, 0)
	b.SetBytes(int64(len(stream) / n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
