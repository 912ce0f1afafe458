package imageio

import (
	"bytes"
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

	// One Preprocessor across all inputs, as a daemon worker keeps one:
	// whatever an input leaves in its decoder must not hurt the next.
	prep := Preprocessor{Layout: Layout{20, 12, 3}, Limits: Limits{MaxPixels: 4_000_000}}
	f.Fuzz(func(t *testing.T, data []byte) {
		// DecodeFor reaches libjpeg-turbo's scaled decoding (with cgo);
		// it must keep Decode's contract too.
		checkDecoded(t, data, Layout{})
		checkDecoded(t, data, Layout{20, 12, 3})
		checkPreprocessed(t, &prep, data)
	})
}

// checkPreprocessed checks Preprocess on data: success exactly when
// DecodeFor succeeds, the same pixels as DecodeFor and Resize, and on
// failure the same error.
func checkPreprocessed(t *testing.T, p *Preprocessor, data []byte) {
	t.Helper()
	got := make([]byte, p.Layout.Len())
	_, err := p.Preprocess(got, data)
	img, _, wantErr := DecodeFor(data, p.Limits, p.Layout)
	switch {
	case wantErr != nil:
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("Preprocess err = %v, DecodeFor err = %v", err, wantErr)
		}
	case err != nil:
		t.Fatalf("Preprocess: %v; DecodeFor succeeded", err)
	default:
		want := make([]byte, p.Layout.Len())
		if err := Resize(want, img, p.Layout); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("Preprocess pixels differ from DecodeFor+Resize")
		}
	}
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
