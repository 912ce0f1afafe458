package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// badInputs are inputs Decode must refuse, each with the sentinel it must
// report. They double as fuzz seeds.
func badInputs(t testing.TB) []struct {
	name string
	data []byte
	want error
} {
	jpg := encodeJPEG(t, photo(64, 48, 1), 90)
	pngData := encodePNG(t, photo(64, 48, 2))
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"text", []byte("hello, this is not an image\n"), ErrUnknownFormat},
		{"html", []byte("<!DOCTYPE html><html><body>404</body></html>"), ErrUnknownFormat},
		{"random", random, ErrUnknownFormat},
		{"truncated jpeg", jpg[:len(jpg)/2], ErrCorrupt},
		{"jpeg header only", jpg[:2], ErrCorrupt},
		{"jpeg missing EOI", jpg[:len(jpg)-2], ErrCorrupt},
		{"truncated png", pngData[:len(pngData)/2], ErrCorrupt},
		{"png missing IEND", pngData[:len(pngData)-12], ErrCorrupt},
		{"png signature only", pngData[:8], ErrCorrupt},
		{"huge png", hugePNG(t, 50000, 50000), ErrTooManyPixels},
		{"huge jpeg", hugeJPEG(t, 50000, 50000), ErrTooManyPixels},
		{"zero-width png", hugePNG(t, 0, 10), ErrCorrupt},
		{"gif header only", []byte("GIF89a"), ErrCorrupt},
		// x/image/bmp reports an unrecognised header as unsupported.
		{"bmp garbage", []byte("BM this is not a bitmap at all......................"), ErrUnknownFormat},
		{"truncated bmp", encodeFormat(t, "bmp", photo(20, 10, 5))[:300], ErrCorrupt},
		{"webp garbage", append([]byte("RIFF\x20\x00\x00\x00WEBPVP8 \x14\x00\x00\x00"), bytes.Repeat([]byte{0xa5}, 20)...), ErrCorrupt},
		{"webp truncated", []byte("RIFF\x20\x00\x00\x00WEBPVP8L"), ErrCorrupt},
	}
}

func TestDecodeBadInputs(t *testing.T) {
	for _, tc := range badInputs(t) {
		t.Run(tc.name, func(t *testing.T) {
			img, _, err := Decode(tc.data, Limits{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode error = %v, want %v", err, tc.want)
			}
			if img != nil {
				t.Errorf("Decode returned an image alongside error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "imageio: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			t.Log(err)
		})
	}
}

// Truncation surfaces from the standard decoders as io.ErrUnexpectedEOF or
// as format errors ("short Huffman data", "not enough pixel data")
// depending on where the data stops. All must be ErrCorrupt, keeping the
// decoder's error in the chain.
func TestDecodeTruncatedWrapsDecoderError(t *testing.T) {
	decoders := map[string]func(io.Reader) (image.Image, error){"png": png.Decode, "jpeg": jpeg.Decode}
	for format, decode := range decoders {
		data := encodeFormat(t, format, photo(64, 48, 1))
		sawEOF := false
		for n := 8; n < len(data); n += 7 { // Shorter prefixes lack a whole signature.
			_, raw := decode(bytes.NewReader(data[:n]))
			_, got, err := Decode(data[:n], Limits{})
			if got != format || !errors.Is(err, ErrCorrupt) || !errors.Is(err, raw) || !strings.Contains(err.Error(), raw.Error()) {
				t.Fatalf("%s prefix %d: Decode = %q, %v; decoder said %v", format, n, got, err, raw)
			}
			sawEOF = sawEOF || errors.Is(err, io.ErrUnexpectedEOF)
		}
		if !sawEOF {
			t.Errorf("%s: no prefix produced io.ErrUnexpectedEOF; test does not cover that mapping", format)
		}
	}
}

// Every prefix of a valid image must fail cleanly: a truncated upload must
// never come back as a partly grey picture.
func TestDecodeEveryTruncation(t *testing.T) {
	for _, format := range []string{"jpeg", "png", "gif", "bmp", "webp"} {
		data := encodeFormat(t, format, quadrants(24, 16))
		full, _, err := Decode(data, Limits{})
		if err != nil {
			t.Fatalf("%s: full image: %v", format, err)
		}
		for n := 1; n < len(data); n++ {
			img, _, err := Decode(data[:n], Limits{})
			if err == nil {
				// A few trailing bytes carry no pixels (the GIF trailer,
				// RIFF padding); losing them may succeed, but only with the
				// complete picture.
				sameImage(t, img, full, 0)
				if n < len(data)-1 {
					t.Errorf("%s: prefix %d/%d decoded without error", format, n, len(data))
				}
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("%s: prefix %d: %v does not wrap ErrCorrupt", format, n, err)
			}
		}
	}
}

func encodeFormat(t testing.TB, format string, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "jpeg":
		return encodeJPEG(t, m, 90)
	case "png":
		return encodePNG(t, m)
	case "gif":
		if err := gif.Encode(&buf, m, nil); err != nil {
			t.Fatal(err)
		}
	case "bmp":
		if err := bmp.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	case "webp":
		return losslessWebP(t, m)
	default:
		t.Fatalf("unknown format %q", format)
	}
	return buf.Bytes()
}

func TestDecodeTooManyPixelsMessageAndMemory(t *testing.T) {
	data := hugePNG(t, 50000, 50000)
	if len(data) > 500 {
		t.Fatalf("test PNG is %d bytes, want a few hundred", len(data))
	}
	_, _, err := Decode(data, Limits{})
	if !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("err = %v, want ErrTooManyPixels", err)
	}
	for _, want := range []string{"50000x50000", fmt.Sprint(DefaultMaxPixels)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 10
	for range runs {
		if _, _, err := Decode(data, Limits{}); !errors.Is(err, ErrTooManyPixels) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 64<<10 {
		t.Errorf("rejecting a 50000x50000 PNG allocated %d bytes per call, want < 64 KiB", perRun)
	}

	jpg := hugeJPEG(t, 50000, 50000)
	runtime.ReadMemStats(&before)
	for range runs {
		if _, _, err := Decode(jpg, Limits{}); !errors.Is(err, ErrTooManyPixels) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 256<<10 {
		t.Errorf("rejecting a 50000x50000 JPEG allocated %d bytes per call, want < 256 KiB", perRun)
	}
}

func TestDecodeLimits(t *testing.T) {
	data := encodePNG(t, photo(100, 50, 1))
	tests := []struct {
		lim  Limits
		want error
	}{
		{Limits{}, nil},
		{Limits{MaxPixels: 5000}, nil},
		{Limits{MaxPixels: 4999}, ErrTooManyPixels},
		{Limits{MaxBytes: int64(len(data))}, nil},
		{Limits{MaxBytes: int64(len(data)) - 1}, ErrTooLarge},
		{Limits{MaxBytes: -1, MaxPixels: -1}, nil}, // Non-positive means default.
	}
	for _, tc := range tests {
		_, _, err := Decode(data, tc.lim)
		if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
			t.Errorf("Decode with %+v: err = %v, want %v", tc.lim, err, tc.want)
		}
	}
}

// endless yields an unbounded stream and counts what was taken from it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestReadAll(t *testing.T) {
	r := &endless{}
	_, err := ReadAll(r, 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadAll(endless) err = %v, want ErrTooLarge", err)
	}
	if r.n > 1<<20+1 {
		t.Errorf("ReadAll consumed %d bytes with max %d", r.n, 1<<20)
	}

	data := bytes.Repeat([]byte{7}, 1000)
	for _, tc := range []struct {
		max  int64
		want error
	}{{1000, nil}, {999, ErrTooLarge}, {0, nil}, {-5, nil}, {math.MaxInt64, nil}} {
		got, err := ReadAll(bytes.NewReader(data), tc.max)
		if !errors.Is(err, tc.want) || (tc.want == nil && (err != nil || !bytes.Equal(got, data))) {
			t.Errorf("ReadAll(1000 bytes, %d) = %d bytes, %v; want %v", tc.max, len(got), err, tc.want)
		}
	}

	wantErr := errors.New("connection reset")
	_, err = ReadAll(io.MultiReader(bytes.NewReader(data), iotestErr{wantErr}), 0)
	if !errors.Is(err, wantErr) {
		t.Errorf("ReadAll with failing reader: err = %v, want %v", err, wantErr)
	}

	// A body exactly at the default limit then fails Decode's own check only
	// if it is larger; the two limits agree.
	big := &io.LimitedReader{R: &endless{}, N: DefaultMaxBytes + 1}
	if _, err := ReadAll(big, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadAll(DefaultMaxBytes+1) err = %v, want ErrTooLarge", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// rgbaOf returns c as non-premultiplied-agnostic 8-bit RGBA.
func rgbaOf(c color.Color) [4]uint8 {
	r, g, b, a := c.RGBA()
	return [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

// sameImage reports the first pixel where got and want differ by more than
// tol in any 8-bit premultiplied channel.
func sameImage(t *testing.T, got, want image.Image, tol int) {
	t.Helper()
	if got.Bounds().Size() != want.Bounds().Size() {
		t.Fatalf("size %v, want %v", got.Bounds().Size(), want.Bounds().Size())
	}
	gb, wb := got.Bounds(), want.Bounds()
	for y := 0; y < wb.Dy(); y++ {
		for x := 0; x < wb.Dx(); x++ {
			g := rgbaOf(got.At(gb.Min.X+x, gb.Min.Y+y))
			w := rgbaOf(want.At(wb.Min.X+x, wb.Min.Y+y))
			for i := range g {
				if d := int(g[i]) - int(w[i]); d > tol || d < -tol {
					t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
				}
			}
		}
	}
}

func TestDecodeFormats(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 20, 10))
	gray16 := image.NewGray16(image.Rect(0, 0, 20, 10))
	pal := image.NewPaletted(image.Rect(0, 0, 20, 10), color.Palette{
		color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.NRGBA{0, 255, 0, 0}, color.RGBA{0, 0, 0, 255},
	})
	nrgba := image.NewNRGBA(image.Rect(0, 0, 20, 10))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 20, 10))
	for y := 0; y < 10; y++ {
		for x := 0; x < 20; x++ {
			gray.SetGray(x, y, color.Gray{uint8(x * 12)})
			gray16.SetGray16(x, y, color.Gray16{uint16(x*3000 + y*100)})
			pal.SetColorIndex(x, y, uint8((x/5+y/5)%4))
			nrgba.SetNRGBA(x, y, color.NRGBA{uint8(x * 12), 100, uint8(y * 25), uint8(x*13 + y*3)})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(x * 3000), uint16(y * 6000), 40000, 0xffff})
		}
	}
	webpQuads := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for y := 0; y < 10; y++ {
		for x := 0; x < 20; x++ {
			c := color.RGBA{255, 0, 0, 255}
			switch {
			case x >= 10 && y < 5:
				c = color.RGBA{0, 255, 0, 255}
			case x < 10 && y >= 5:
				c = color.RGBA{0, 0, 255, 255}
			case x >= 10 && y >= 5:
				c = color.RGBA{255, 255, 255, 255}
			}
			webpQuads.SetRGBA(x, y, c)
		}
	}
	gifImg := image.NewPaletted(image.Rect(0, 0, 20, 10), palette.WebSafe)
	for y := 0; y < 10; y++ {
		for x := 0; x < 20; x++ {
			gifImg.SetColorIndex(x, y, uint8(x*10+y))
		}
	}

	tests := []struct {
		name   string
		format string
		src    image.Image
		tol    int // -1: lossy, check quadrant colours only
	}{
		{"jpeg", "jpeg", quadrants(64, 32), -1},
		{"png gray", "png", gray, 0},
		{"png gray16", "png", gray16, 0},
		{"png paletted", "png", pal, 0},
		{"png nrgba alpha", "png", nrgba, 0},
		{"png rgba64", "png", rgba64, 0},
		{"gif", "gif", gifImg, 0},
		{"bmp", "bmp", photo(20, 10, 5), 0},
		{"bmp gray", "bmp", gray, 0},
		{"webp lossless", "webp", webpQuads, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeFormat(t, tc.format, tc.src)
			img, format, err := Decode(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if format != tc.format {
				t.Errorf("format = %q, want %q", format, tc.format)
			}
			if tc.tol < 0 {
				checkQuadrants(t, img)
			} else {
				sameImage(t, img, tc.src, tc.tol)
			}

			// Whatever type the decoder produced, Resize must agree with
			// the float reference.
			for _, l := range []Layout{{8, 4, 3}, {7, 9, 1}, {40, 20, 3}} {
				got := mustResize(t, img, l)
				want := refResize(img, l)
				if d, at := maxDiff(got, want); d > 1 {
					t.Errorf("Resize(%T to %v) differs from reference by %d at byte %d", img, l, d, at)
				}
			}
		})
	}
}

func TestDecodeJPEGQuadrantColours(t *testing.T) {
	img, _, err := Decode(encodeJPEG(t, quadrants(32, 16), 95), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkQuadrants(t, img)
}

// checkQuadrants asserts that img shows quadrants() upright by sampling the
// middle of each quadrant.
func checkQuadrants(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	for _, p := range []struct {
		x, y int
		want color.RGBA
	}{
		{w / 4, h / 4, quadTL},
		{3 * w / 4, h / 4, quadTR},
		{w / 4, 3 * h / 4, quadBL},
		{3 * w / 4, 3 * h / 4, quadBR},
	} {
		got := rgbaOf(img.At(b.Min.X+p.x, b.Min.Y+p.y))
		want := rgbaOf(p.want)
		for i := range 3 {
			if d := int(got[i]) - int(want[i]); d > 30 || d < -30 {
				t.Fatalf("pixel (%d,%d) of %dx%d = %v, want about %v", p.x, p.y, w, h, got, want)
			}
		}
	}
}

func TestDecodeGIFFirstFrameOnScreen(t *testing.T) {
	pal := color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{255, 0, 0, 255}}
	frame := image.NewPaletted(image.Rect(4, 2, 8, 6), pal)
	for i := range frame.Pix {
		frame.Pix[i] = 1
	}
	second := image.NewPaletted(image.Rect(0, 0, 10, 8), pal)
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{
		Image: []*image.Paletted{frame, second},
		Delay: []int{0, 0},
		Config: image.Config{
			ColorModel: pal, Width: 10, Height: 8,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := Decode(buf.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, 10, 8) {
		t.Fatalf("bounds = %v, want the 10x8 logical screen", got)
	}
	if got := rgbaOf(img.At(5, 3)); got != [4]uint8{255, 0, 0, 255} {
		t.Errorf("inside the frame = %v, want opaque red", got)
	}
	if got := rgbaOf(img.At(0, 0)); got[3] != 0 {
		t.Errorf("outside the frame = %v, want transparent", got)
	}
	// Transparent composites onto white.
	out := mustResize(t, img, Layout{10, 8, 3})
	if got := out[:3]; !bytes.Equal(got, []byte{255, 255, 255}) {
		t.Errorf("resized corner = %v, want white", got)
	}
}

func TestDecodeErrorMapping(t *testing.T) {
	if err := decodeError("bmp", bmp.ErrUnsupported); !errors.Is(err, ErrUnknownFormat) || !errors.Is(err, bmp.ErrUnsupported) {
		t.Errorf("bmp.ErrUnsupported mapped to %v", err)
	}
	if err := decodeError("png", errors.New("png: invalid format: bad filter")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("format error mapped to %v", err)
	}
	if err := decodeError("gif", io.EOF); !errors.Is(err, ErrCorrupt) {
		t.Errorf("io.EOF mapped to %v", err)
	}
}
