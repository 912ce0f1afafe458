package imageio

import (
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, tc := range badInputs(f) {
		f.Add(tc.data)
	}
	f.Add(encodeJPEG(f, photo(24, 16, 1), 90))
	f.Add(withSegment(encodeJPEG(f, quadrants(16, 8), 90), 0xe1, exifPayload(binary.BigEndian, 6)))
	f.Add(encodePNG(f, photo(24, 16, 2)))
	for _, format := range []string{"gif", "bmp", "webp"} {
		f.Add(encodeFormat(f, format, quadrants(12, 8)))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// DecodeFor reaches libjpeg-turbo's scaled decoding (with cgo);
		// it must keep Decode's contract too.
		checkDecoded(t, data, Layout{})
		checkDecoded(t, data, Layout{20, 12, 3})
	})
}

// checkDecoded checks the contract of DecodeFor on data: an image within
// the limits that Resize accepts, or an error wrapping exactly one sentinel.
func checkDecoded(t *testing.T, data []byte, want Layout) {
	t.Helper()
	img, format, err := DecodeFor(data, Limits{MaxPixels: 4_000_000}, want)
	if err != nil {
		if img != nil {
			t.Fatalf("image returned with error %v", err)
		}
		n := 0
		for _, s := range []error{ErrEmpty, ErrTooLarge, ErrTooManyPixels, ErrUnknownFormat, ErrCorrupt} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v wraps %d sentinels, want exactly 1", err, n)
		}
		return
	}
	if format == "" {
		t.Fatal("success without a format name")
	}
	b := img.Bounds()
	if b.Empty() || int64(b.Dx())*int64(b.Dy()) > 4_000_000 {
		t.Fatalf("decoded bounds %v", b)
	}
	l := Layout{32, 32, 3}
	if err := Resize(make([]byte, l.Len()), img, l); err != nil {
		t.Fatalf("Resize of a decoded %s %T %v: %v", format, img, b, err)
	}
}
