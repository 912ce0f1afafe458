//go:build cgo

package jpegturbo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func TestScaledSize(t *testing.T) {
	tests := []struct {
		w, h, minW, minH int
		want             image.Point
	}{
		{640, 480, 224, 224, image.Pt(320, 240)},   // 1/2; 3/8 would give 240x180
		{1920, 1080, 224, 224, image.Pt(480, 270)}, // 1/4; 1/8 would give 240x135
		{1280, 720, 224, 224, image.Pt(480, 270)},  // 3/8; 1/4 would give 320x180
		{3840, 2160, 224, 224, image.Pt(480, 270)}, // 1/8, the smallest
		{640, 480, 300, 300, image.Pt(400, 300)},   // 5/8
		{641, 481, 224, 224, image.Pt(321, 241)},   // rounded up, as TJSCALED
		{224, 224, 224, 224, image.Pt(224, 224)},   // exactly the wish: unscaled
		{100, 80, 224, 224, image.Pt(100, 80)},     // smaller than the wish: never enlarged
		{640, 480, 0, 0, image.Pt(80, 60)},         // no minimum: the smallest factor
		{640, 480, 640, 480, image.Pt(640, 480)},   // the full size
		{1, 1, 224, 224, image.Pt(1, 1)},
		{1, 1, 0, 0, image.Pt(1, 1)},
		{65535, 65535, 224, 224, image.Pt(8192, 8192)},
	}
	for _, tc := range tests {
		w, h := ScaledSize(tc.w, tc.h, tc.minW, tc.minH)
		if got := image.Pt(w, h); got != tc.want {
			t.Errorf("ScaledSize(%dx%d, min %dx%d) = %v, want %v", tc.w, tc.h, tc.minW, tc.minH, got, tc.want)
		}
	}
}

// cmyk returns testdata/ycck.jpg with its Adobe marker's transform set to
// 0: the same bytes, now declaring plain (inverted) CMYK.
func cmyk(t testing.TB) []byte {
	t.Helper()
	b := readFile(t, "testdata/ycck.jpg")
	i := bytes.Index(b, []byte("Adobe"))
	if i < 0 || b[i+11] != 2 {
		t.Fatal("testdata/ycck.jpg has no Adobe marker with transform 2")
	}
	b[i+11] = 0
	return b
}

func TestHeader(t *testing.T) {
	d := newDecoder(t)
	gray := image.NewGray(image.Rect(0, 0, 30, 20))
	tests := []struct {
		name        string
		data        []byte
		w, h        int
		subsamp, cs int
	}{
		{"ycbcr 4:2:0", encodeJPEG(t, photo(64, 48, 1), 90), 64, 48, Subsamp420, ColorspaceYCbCr},
		{"gray", encodeJPEG(t, gray, 90), 30, 20, SubsampGray, ColorspaceGray},
		{"progressive", readFile(t, "testdata/photo-progressive.jpg"), 160, 120, Subsamp420, ColorspaceYCbCr},
		{"ycck", readFile(t, "testdata/ycck.jpg"), 64, 48, Subsamp444, ColorspaceYCCK},
		{"cmyk", cmyk(t), 64, 48, Subsamp444, ColorspaceCMYK},
	}
	for _, tc := range tests {
		w, h, s, cs, err := d.Header(tc.data)
		if err != nil || w != tc.w || h != tc.h || s != tc.subsamp || cs != tc.cs {
			t.Errorf("%s: Header = %dx%d subsamp %d colorspace %d, %v; want %dx%d %d %d",
				tc.name, w, h, s, cs, err, tc.w, tc.h, tc.subsamp, tc.cs)
		}
	}
}

// Decoded at full size, libjpeg-turbo and image/jpeg see the same picture:
// they differ only in IDCT rounding and in chroma upsampling (libjpeg-turbo
// interpolates, image/jpeg replicates).
func TestDecodeMatchesImageJPEG(t *testing.T) {
	d := newDecoder(t)
	gray := image.NewGray(image.Rect(0, 0, 97, 61))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
	}
	inputs := []struct {
		name string
		data []byte
	}{
		{"640x480", encodeJPEG(t, photo(640, 480, 1), 90)},
		{"333x197 odd", encodeJPEG(t, photo(333, 197, 2), 75)},
		{"gray", encodeJPEG(t, gray, 90)},
		{"progressive", readFile(t, "testdata/photo-progressive.jpg")},
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			want := goDecode(t, in.data)
			w, h := want.Rect.Dx(), want.Rect.Dy()
			got, err := d.DecodeScaled(in.data, w, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			mean, maxd := diff(t, got, want)
			t.Logf("mean abs diff %.3f, max %d", mean, maxd)
			if mean >= 2 || maxd >= 12 {
				t.Errorf("differs from image/jpeg: mean abs diff %.3f (want < 2), max %d (want < 12)", mean, maxd)
			}
			for i := 3; i < len(got.Pix); i += 4 {
				if got.Pix[i] != 255 {
					t.Fatalf("alpha at byte %d = %d, want 255", i, got.Pix[i])
				}
			}
		})
	}
}

// Scaled decodes approximate a box-filtered full decode.
func TestDecodeScaledContent(t *testing.T) {
	d := newDecoder(t)
	data := encodeJPEG(t, photo(640, 480, 3), 90)
	full := goDecode(t, data)
	for _, f := range []int{2, 4, 8} {
		got, err := d.DecodeScaled(data, 640/f, 480/f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rect != image.Rect(0, 0, 640/f, 480/f) {
			t.Fatalf("1/%d: bounds %v", f, got.Rect)
		}
		mean, maxd := diff(t, got, boxDown(full, f))
		t.Logf("1/%d: mean abs diff from a box filter %.3f, max %d", f, mean, maxd)
		if mean >= 3 {
			t.Errorf("1/%d: mean abs diff from a box-filtered full decode %.3f, want < 3", f, mean)
		}
	}
}

func TestDecodeScaledReusesDestination(t *testing.T) {
	d := newDecoder(t)
	big := encodeJPEG(t, photo(640, 480, 4), 90)
	small := encodeJPEG(t, photo(200, 100, 5), 90)

	first, err := d.DecodeScaled(big, 224, 224, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(first.Pix)
	again, err := d.DecodeScaled(big, 224, 224, first)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || !bytes.Equal(again.Pix, want) {
		t.Fatal("decoding the same image into its previous result gave another image or other pixels")
	}

	// Smaller: same buffer, new bounds.
	s, err := d.DecodeScaled(small, 200, 100, first)
	if err != nil {
		t.Fatal(err)
	}
	if s != first || s.Rect != image.Rect(0, 0, 200, 100) || s.Stride != 800 || len(s.Pix) != 200*100*4 {
		t.Fatalf("reused image: %p vs %p, rect %v stride %d len %d", s, first, s.Rect, s.Stride, len(s.Pix))
	}
	fresh, err := d.DecodeScaled(small, 200, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.Pix, s.Pix) {
		t.Error("decode into a reused buffer differs from a fresh decode")
	}

	// Larger than the buffer: a new image, dst untouched.
	tiny := image.NewRGBA(image.Rect(0, 0, 2, 2))
	l, err := d.DecodeScaled(big, 640, 480, tiny)
	if err != nil {
		t.Fatal(err)
	}
	if l == tiny || l.Rect.Dx() != 640 || tiny.Rect.Dx() != 2 {
		t.Errorf("too small a dst was reused or changed")
	}
}

func TestDecodeScaledAllocations(t *testing.T) {
	d := newDecoder(t)
	for _, size := range []image.Point{{640, 480}, {1920, 1080}} {
		data := encodeJPEG(t, photo(size.X, size.Y, 6), 90)
		dst, err := d.DecodeScaled(data, 224, 224, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() {
			if _, err := d.DecodeScaled(data, 224, 224, dst); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: DecodeScaled into a reused image allocates %v times per call, want 0", size, n)
		}
		if n := testing.AllocsPerRun(10, func() {
			if _, _, _, _, err := d.Header(data); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Header allocates %v times per call, want 0", size, n)
		}
	}
}

// Every prefix of a valid JPEG fails: libjpeg-turbo's "premature end of
// data" is a warning, and decoding stops on warnings.
func TestDecodeScaledEveryTruncation(t *testing.T) {
	d := newDecoder(t)
	data := encodeJPEG(t, photo(48, 32, 7), 90)
	full, err := d.DecodeScaled(data, 48, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	sawWarning := false
	for n := 0; n < len(data); n++ {
		img, err := d.DecodeScaled(data[:n], 48, 32, nil)
		if err == nil {
			t.Fatalf("prefix %d/%d decoded without error", n, len(data))
		}
		if img != nil {
			t.Fatalf("prefix %d: image returned with error %v", n, err)
		}
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), "jpegturbo: ") {
			t.Fatalf("prefix %d: error %v (%T) is not a prefixed *Error", n, err, err)
		}
		sawWarning = sawWarning || e.Warning
	}
	if !sawWarning {
		t.Error("no truncation was reported as a libjpeg-turbo warning; the test does not cover that path")
	}
	// The decoder is still good after all those failures.
	again, err := d.DecodeScaled(data, 48, 32, nil)
	if err != nil || !bytes.Equal(again.Pix, full.Pix) {
		t.Fatalf("after failures: %v", err)
	}
}

func TestDecodeScaledRefuses(t *testing.T) {
	d := newDecoder(t)
	valid := encodeJPEG(t, photo(64, 48, 8), 90)

	// A 12-bit SOF: the same header byte image/jpeg refuses.
	twelve := bytes.Clone(valid)
	i := bytes.Index(twelve, []byte{0xff, 0xc0})
	twelve[i+4] = 12
	// Garbage in the entropy-coded data right after the scan header.
	garbled := bytes.Clone(valid)
	sos := bytes.Index(garbled, []byte{0xff, 0xda})
	for k := sos + 14; k < sos+200; k++ {
		garbled[k] = 0xff
	}
	// A Huffman table that claims more codes than it holds.
	badTable := bytes.Clone(valid)
	dht := bytes.Index(badTable, []byte{0xff, 0xc4})
	badTable[dht+5] = 0xff

	// SOI, the quantisation tables of a real image, EOI: no frame.
	dqt := bytes.Index(valid, []byte{0xff, 0xdb})
	n := int(binary.BigEndian.Uint16(valid[dqt+2:]))
	tablesOnly := append(append([]byte{0xff, 0xd8}, valid[dqt:dqt+2+n]...), 0xff, 0xd9)

	tests := []struct {
		name        string
		data        []byte
		unsupported bool
	}{
		{"nil", nil, false},
		{"tables only", tablesOnly, false},
		{"soi only", []byte{0xff, 0xd8}, false},
		{"not a jpeg", []byte("hello, world"), false},
		{"12-bit", twelve, false},
		{"garbled scan", garbled, false},
		{"bad huffman table", badTable, false},
		{"ycck", readFile(t, "testdata/ycck.jpg"), true},
		{"cmyk", cmyk(t), true},
	}
	for _, tc := range tests {
		// A successful decode first leaves state in the handle that a bad
		// input must not reuse.
		if _, err := d.DecodeScaled(valid, 32, 32, nil); err != nil {
			t.Fatal(err)
		}
		img, err := d.DecodeScaled(tc.data, 32, 32, nil)
		if err == nil || img != nil {
			t.Errorf("%s: DecodeScaled = %v, %v; want an error", tc.name, img != nil, err)
			continue
		}
		if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
			t.Errorf("%s: errors.Is(%v, ErrUnsupported) = %v", tc.name, err, got)
		}
		if !strings.HasPrefix(err.Error(), "jpegturbo: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

func TestClosedDecoder(t *testing.T) {
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close() // idempotent
	data := encodeJPEG(t, photo(16, 16, 9), 90)
	if _, _, _, _, err := d.Header(data); err == nil {
		t.Error("Header on a closed Decoder succeeded")
	}
	if _, err := d.DecodeScaled(data, 8, 8, nil); err == nil {
		t.Error("DecodeScaled on a closed Decoder succeeded")
	}
}

// Decoders are independent: one per goroutine, in parallel, under -race.
func TestParallelDecoders(t *testing.T) {
	data := encodeJPEG(t, photo(320, 240, 10), 90)
	trunc := data[:len(data)/2]
	ref, err := newDecoder(t).DecodeScaled(data, 160, 120, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			d, err := NewDecoder()
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			var dst *image.RGBA
			for i := range 20 {
				if (g+i)%3 == 0 {
					if _, err := d.DecodeScaled(trunc, 160, 120, nil); err == nil {
						errs <- errors.New("truncated input decoded")
						return
					}
					continue
				}
				if dst, err = d.DecodeScaled(data, 160, 120, dst); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(dst.Pix, ref.Pix) {
					errs <- fmt.Errorf("goroutine %d: pixels differ", g)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzDecodeScaled(f *testing.F) {
	f.Add(encodeJPEG(f, photo(24, 16, 1), 90), uint16(12), uint16(8))
	f.Add(encodeJPEG(f, image.NewGray(image.Rect(0, 0, 9, 9)), 50), uint16(0), uint16(0))
	f.Add(readFile(f, "testdata/photo-progressive.jpg"), uint16(40), uint16(30))
	f.Add(readFile(f, "testdata/ycck.jpg"), uint16(64), uint16(48))
	valid := encodeJPEG(f, photo(40, 24, 2), 75)
	f.Add(valid[:len(valid)/2], uint16(40), uint16(24))
	huge := bytes.Clone(valid)
	i := bytes.Index(huge, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(huge[i+5:], 60000)
	binary.BigEndian.PutUint16(huge[i+7:], 60000)
	f.Add(huge, uint16(224), uint16(224))

	d := newDecoder(f)
	f.Fuzz(func(t *testing.T, data []byte, minW, minH uint16) {
		w, h, _, _, err := d.Header(data)
		if err != nil {
			if _, err := d.DecodeScaled(data, int(minW), int(minH), nil); err == nil {
				t.Fatal("DecodeScaled succeeded where Header failed")
			}
			return
		}
		if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
			t.Fatalf("Header = %dx%d", w, h)
		}
		sw, sh := ScaledSize(w, h, int(minW), int(minH))
		if int64(sw)*int64(sh) > 4<<20 {
			return // What a caller's pixel budget refuses before decoding.
		}
		img, err := d.DecodeScaled(data, int(minW), int(minH), nil)
		if err != nil {
			if img != nil {
				t.Fatal("image returned with an error")
			}
			return
		}
		if img.Rect != image.Rect(0, 0, sw, sh) || len(img.Pix) != 4*sw*sh || img.Stride != 4*sw {
			t.Fatalf("decoded %v stride %d len %d, want %dx%d", img.Rect, img.Stride, len(img.Pix), sw, sh)
		}
		// Decoding is deterministic, into a reused buffer too.
		again, err := d.DecodeScaled(data, int(minW), int(minH), img)
		if err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		first := bytes.Clone(again.Pix)
		third, err := d.DecodeScaled(data, int(minW), int(minH), nil)
		if err != nil || !bytes.Equal(third.Pix, first) {
			t.Fatalf("decodes differ (%v)", err)
		}
		// DecodeResized into a small model input: it decodes exactly
		// when DecodeScaled does (its resize is checked against
		// edge/imageio's by FuzzDecode there), the same bytes every time.
		rw, rh, ch := 1+int(minW)%48, 1+int(minH)%48, 3-2*(int(minW)%2)
		_, scaledErr := d.DecodeScaled(data, rw, rh, nil)
		dst := make([]byte, rw*rh*ch)
		if _, err := d.DecodeResized(data, dst, rw, rh, ch); (err == nil) != (scaledErr == nil) {
			t.Fatalf("DecodeResized err %v, DecodeScaled err %v", err, scaledErr)
		} else if err == nil {
			again := make([]byte, len(dst))
			if _, err := d.DecodeResized(data, again, rw, rh, ch); err != nil || !bytes.Equal(again, dst) {
				t.Fatalf("DecodeResized differs on a second run (%v)", err)
			}
		}
	})
}

// TestDecodeResized: the fused decode and resize gives the sizes asked
// for, a sensible picture (the quadrant colours of a test image) in RGB
// and in grey, refuses bad destinations, and allocates nothing per call.
func TestDecodeResized(t *testing.T) {
	d := newDecoder(t)
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	quad := [4][3]uint8{{200, 30, 30}, {30, 200, 30}, {30, 30, 200}, {220, 220, 220}}
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			c := quad[2*(y/240)+x/320]
			img.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	data := encodeJPEG(t, img, 95)
	for _, ch := range []int{3, 1} {
		dst := make([]byte, 224*224*ch)
		dec, err := d.DecodeResized(data, dst, 224, 224, ch)
		if err != nil {
			t.Fatal(err)
		}
		if dec <= 0 {
			t.Errorf("decode time %v", dec)
		}
		for q, at := range [4][2]int{{56, 56}, {168, 56}, {56, 168}, {168, 168}} {
			px := dst[(at[1]*224+at[0])*ch : (at[1]*224+at[0])*ch+ch]
			want := quad[q][:]
			if ch == 1 {
				want = []uint8{uint8((19595*int(want[0]) + 38470*int(want[1]) + 7471*int(want[2]) + 1<<15) >> 16)}
			}
			for k := range px {
				if d := int(px[k]) - int(want[k]); d < -6 || d > 6 {
					t.Errorf("%d channels, quadrant %d: %v, want about %v", ch, q, px, want)
					break
				}
			}
		}
		if n := testing.AllocsPerRun(10, func() { d.DecodeResized(data, dst, 224, 224, ch) }); n != 0 {
			t.Errorf("%v allocations per call", n)
		}
	}
	for _, tc := range []struct{ n, w, h, ch int }{{10, 224, 224, 3}, {224 * 224 * 4, 224, 224, 4}, {0, 0, 0, 3}} {
		if _, err := d.DecodeResized(data, make([]byte, tc.n), tc.w, tc.h, tc.ch); err == nil {
			t.Errorf("destination %d bytes for %dx%dx%d accepted", tc.n, tc.w, tc.h, tc.ch)
		}
	}
	if _, err := d.DecodeResized(cmyk(t), make([]byte, 16*16*3), 16, 16, 3); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CMYK: %v, want ErrUnsupported", err)
	}
}

// Damaged copies of valid images - bytes overwritten, removed, inserted -
// must fail or decode to the right size, never crash. This walks the C
// decoder through far more states than the seed corpus of the fuzz target
// reaches in a normal test run.
func TestDecodeScaledDamaged(t *testing.T) {
	d := newDecoder(t)
	sources := [][]byte{
		encodeJPEG(t, photo(80, 56, 14), 80),
		encodeJPEG(t, image.NewGray(image.Rect(0, 0, 40, 24)), 80),
		readFile(t, "testdata/photo-progressive.jpg"),
	}
	rng := rand.New(rand.NewPCG(15, 15))
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	var dst *image.RGBA
	ok := 0
	for i := range rounds {
		src := sources[i%len(sources)]
		b := bytes.Clone(src)
		for range 1 + rng.IntN(4) {
			p := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[p] = byte(rng.Uint32())
			case 1:
				b = append(b[:p], b[p+1:]...)
			case 2:
				b = append(b[:p], append([]byte{byte(rng.Uint32())}, b[p:]...)...)
			}
		}
		minW, minH := rng.IntN(100), rng.IntN(100)
		w, h, _, _, err := d.Header(b)
		if err != nil {
			continue
		}
		sw, sh := ScaledSize(w, h, minW, minH)
		if sw*sh > 1<<22 {
			continue
		}
		img, err := d.DecodeScaled(b, minW, minH, dst)
		if err != nil {
			continue
		}
		if img.Rect != image.Rect(0, 0, sw, sh) {
			t.Fatalf("round %d: decoded %v, want %dx%d", i, img.Rect, sw, sh)
		}
		dst = img
		ok++
	}
	t.Logf("%d of %d damaged inputs still decoded", ok, rounds)
}

// BenchmarkDecodeScaled is the decoder alone, into a reused image, for a
// 224x224 model input.
func BenchmarkDecodeScaled(b *testing.B) {
	for _, size := range []image.Point{{640, 480}, {1920, 1080}} {
		b.Run(fmt.Sprintf("%dx%dTo224", size.X, size.Y), func(b *testing.B) {
			data := encodeJPEG(b, photo(size.X, size.Y, 42), 90)
			d := newDecoder(b)
			var dst *image.RGBA
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var err error
				if dst, err = d.DecodeScaled(data, 224, 224, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
