package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"os"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DecodeFor scales JPEGs by the smallest factor that keeps the upright
// picture at least the wished size (with cgo), and never below it.
func TestDecodeForSize(t *testing.T) {
	tests := []struct {
		name        string
		stored      image.Point // as encoded
		orientation int
		want        Layout
		scaled      image.Point // upright, with libjpeg-turbo
	}{
		{"640x480 to 224", image.Pt(640, 480), 1, Layout{224, 224, 3}, image.Pt(320, 240)},
		{"1920x1080 to 224", image.Pt(1920, 1080), 1, Layout{224, 224, 3}, image.Pt(480, 270)},
		{"1280x720 to 224", image.Pt(1280, 720), 1, Layout{224, 224, 1}, image.Pt(480, 270)},
		{"smaller than the wish", image.Pt(100, 60), 1, Layout{224, 224, 3}, image.Pt(100, 60)},
		{"no wish", image.Pt(640, 480), 1, Layout{}, image.Pt(640, 480)},
		{"half a wish", image.Pt(640, 480), 1, Layout{Width: 100}, image.Pt(640, 480)},
		// Stored 480x640, shown 640x480. The wish 300x150 of the upright
		// picture is 150x300 of the stored one: 1/2 (240x320 stored). Not
		// swapping would pick 5/8 (300x400 stored, 400x300 shown).
		{"rotated 90", image.Pt(480, 640), 6, Layout{300, 150, 3}, image.Pt(320, 240)},
		{"rotated 270", image.Pt(480, 640), 8, Layout{300, 150, 3}, image.Pt(320, 240)},
		{"flipped", image.Pt(640, 480), 2, Layout{300, 150, 3}, image.Pt(320, 240)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			upright := quadrants(tc.stored.X, tc.stored.Y)
			if tc.orientation >= 5 {
				upright = quadrants(tc.stored.Y, tc.stored.X)
			}
			data := encodeJPEG(t, storedAs(upright, tc.orientation), 90)
			if tc.orientation != 1 {
				data = withSegment(data, 0xe1, exifPayload(binary.BigEndian, uint16(tc.orientation)))
			}
			img, format, err := DecodeFor(data, Limits{}, tc.want)
			if err != nil || format != "jpeg" {
				t.Fatalf("DecodeFor = %q, %v", format, err)
			}
			want := tc.scaled
			if !jpegScales {
				want = upright.Rect.Size()
			}
			if got := img.Bounds().Size(); got != want {
				t.Errorf("decoded %v, want %v", got, want)
			}
			checkQuadrants(t, img)
		})
	}
}

// Other formats ignore the wish.
func TestDecodeForOtherFormats(t *testing.T) {
	for _, format := range []string{"png", "gif", "bmp", "webp"} {
		img, got, err := DecodeFor(encodeFormat(t, format, quadrants(64, 48)), Limits{}, Layout{16, 16, 3})
		if err != nil || got != format {
			t.Fatalf("%s: DecodeFor = %q, %v", format, got, err)
		}
		if size := img.Bounds().Size(); size != image.Pt(64, 48) {
			t.Errorf("%s: decoded %v, want the full 64x48", format, size)
		}
	}
}

// Limits apply to the declared size, not the scaled one.
func TestDecodeForLimits(t *testing.T) {
	data := encodeJPEG(t, photo(640, 480, 1), 90)
	if _, _, err := DecodeFor(data, Limits{MaxPixels: 640*480 - 1}, Layout{224, 224, 3}); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("err = %v, want ErrTooManyPixels", err)
	}
	if _, _, err := DecodeFor(hugeJPEG(t, 50000, 50000), Limits{}, Layout{224, 224, 3}); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("huge: err = %v, want ErrTooManyPixels", err)
	}
	for _, tc := range badInputs(t) {
		if _, _, err := DecodeFor(tc.data, Limits{}, Layout{16, 16, 3}); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeFor err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// JPEG variants: progressive and grayscale decode with either decoder;
// YCCK (Adobe CMYK) is image/jpeg's even with cgo. Arithmetic coding, which
// libjpeg-turbo could decode, stays refused as before: image/jpeg's header
// check comes first. testdata/README.md says how the files were made.
func TestDecodeJPEGVariants(t *testing.T) {
	gray := encodeJPEG(t, grayQuadrants(64, 48), 90)
	twelve := encodeJPEG(t, quadrants(64, 48), 90)
	twelve[bytes.Index(twelve, []byte{0xff, 0xc0})+4] = 12 // SOF0 sample precision
	tests := []struct {
		name     string
		data     []byte
		turboErr error // expected error with libjpeg-turbo
		goErr    error // and without
		goType   bool  // with cgo, decoded by the image/jpeg fallback
	}{
		{"progressive", readTestdata(t, "progressive.jpg"), nil, nil, false},
		{"grayscale", gray, nil, nil, false},
		{"ycck", readTestdata(t, "ycck.jpg"), nil, nil, true},
		{"arithmetic", readTestdata(t, "arithmetic.jpg"), ErrUnknownFormat, ErrUnknownFormat, false},
		{"12-bit", twelve, ErrUnknownFormat, ErrUnknownFormat, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr := tc.goErr
			if jpegScales {
				wantErr = tc.turboErr
			}
			for _, want := range []Layout{{}, {32, 24, 3}} {
				img, _, err := DecodeFor(tc.data, Limits{}, want)
				if wantErr != nil {
					if !errors.Is(err, wantErr) {
						t.Fatalf("DecodeFor(%v) err = %v, want %v", want, err, wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("DecodeFor(%v): %v", want, err)
				}
				_, isRGBA := img.(*image.RGBA)
				if jpegScales && isRGBA == tc.goType {
					t.Errorf("DecodeFor(%v) gave %T: wrong decoder", want, img)
				}
				if tc.name == "grayscale" {
					checkGrayQuadrants(t, img)
				} else {
					checkQuadrants(t, img)
				}
			}
		})
	}
}

// grayQuadrants is quadrants in four grey levels.
func grayQuadrants(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Pix[y*m.Stride+x] = uint8(40 + 60*(2*(y*2/h)+x*2/w))
		}
	}
	return m
}

func checkGrayQuadrants(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	for q := range 4 {
		x, y := w/4+(q%2)*w/2, h/4+(q/2)*h/2
		got := rgbaOf(img.At(b.Min.X+x, b.Min.Y+y))
		want := 40 + 60*q
		for i := range 3 {
			if d := int(got[i]) - want; d > 8 || d < -8 {
				t.Fatalf("quadrant %d at (%d,%d) = %v, want grey %d", q, x, y, got, want)
			}
		}
	}
}
