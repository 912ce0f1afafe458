package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// preprocessRef is what Preprocess must produce: DecodeFor, then Resize.
func preprocessRef(t *testing.T, data []byte, lim Limits, l Layout) ([]byte, error) {
	t.Helper()
	img, _, err := DecodeFor(data, lim, l)
	if err != nil {
		return nil, err
	}
	return mustResize(t, img, l), nil
}

func TestPreprocessMatchesDecodeFor(t *testing.T) {
	twelve := encodeJPEG(t, quadrants(64, 48), 90)
	twelve[bytes.Index(twelve, []byte{0xff, 0xc0})+4] = 12
	// Corrupt markers: a reserved marker inside the entropy-coded data, a
	// Huffman table segment whose length runs past the end, a frame
	// header declaring 0 components.
	good := encodeJPEG(t, photo(320, 240, 9), 90)
	sos := bytes.Index(good, []byte{0xff, 0xda})
	badMarker := bytes.Clone(good)
	copy(badMarker[sos+200:], []byte{0xff, 0x02})
	badDHT := bytes.Clone(good)
	dht := bytes.Index(badDHT, []byte{0xff, 0xc4})
	badDHT[dht+2], badDHT[dht+3] = 0xff, 0xf0
	sof := bytes.Index(good, []byte{0xff, 0xc0}) + 4 // the frame header's body
	noComponents := bytes.Clone(good)
	noComponents[sof+5] = 0
	// Frame headers libjpeg-turbo may take and image/jpeg refuses: the
	// same identifier for every component, in the frame and in the scan;
	// luma sampled 3x horizontally.
	repeatedIDs := bytes.Clone(good)
	for k := range 3 {
		repeatedIDs[sof+6+3*k] = 1
		repeatedIDs[sos+5+2*k] = 1
	}
	threeX := bytes.Clone(good)
	threeX[sof+7] = 0x31
	// Plain CMYK: the YCCK sample with the Adobe transform flag cleared.
	cmyk := bytes.Clone(readTestdata(t, "ycck.jpg"))
	adobe := bytes.Index(cmyk, []byte("Adobe"))
	cmyk[adobe+11] = 0
	inputs := []struct {
		name string
		data []byte
	}{
		{"corrupt marker in the scan", badMarker},
		{"corrupt DHT length", badDHT},
		{"no components", noComponents},
		{"repeated component identifiers", repeatedIDs},
		{"3x luma sampling", threeX},
		{"cmyk", cmyk},
		{"640x480", encodeJPEG(t, photo(640, 480, 1), 90)},
		{"1920x1080", encodeJPEG(t, photo(1920, 1080, 2), 85)},
		{"smaller than the input", encodeJPEG(t, photo(100, 80, 3), 90)},
		{"exif rotated", withSegment(encodeJPEG(t, photo(480, 640, 4), 90), 0xe1, exifPayload(binary.BigEndian, 6))},
		{"exif mirrored", withSegment(encodeJPEG(t, photo(320, 240, 5), 90), 0xe1, exifPayload(binary.LittleEndian, 2))},
		{"grayscale", encodeJPEG(t, grayQuadrants(300, 260), 90)},
		{"progressive", readTestdata(t, "progressive.jpg")},
		{"ycck", readTestdata(t, "ycck.jpg")},
		{"arithmetic", readTestdata(t, "arithmetic.jpg")},
		{"12-bit", twelve},
		{"png", encodePNG(t, photo(300, 200, 6))},
	}
	for _, tc := range badInputs(t) {
		inputs = append(inputs, struct {
			name string
			data []byte
		}{tc.name, tc.data})
	}
	// A layout that is not square shows whether a rotated JPEG's wish was
	// turned with it.
	for _, l := range []Layout{{224, 224, 3}, {28, 28, 1}, {300, 150, 3}} {
		// One Preprocessor for every input in turn, as a worker has: the
		// state left by one image (or one failure) must not leak into the
		// next.
		p := Preprocessor{Layout: l}
		defer p.Close()
		for _, in := range inputs {
			want, wantErr := preprocessRef(t, in.data, Limits{}, l)
			if testing.Verbose() && l.Channels == 3 {
				t.Logf("%s: %v", in.name, wantErr)
			}
			got := make([]byte, l.Len())
			res, err := p.Preprocess(got, in.data)
			switch {
			case wantErr != nil:
				if err == nil || err.Error() != wantErr.Error() {
					t.Errorf("%v %s: err = %v, want %v", l, in.name, err, wantErr)
				}
			case err != nil:
				t.Errorf("%v %s: %v", l, in.name, err)
			case !bytes.Equal(got, want):
				d, at := maxDiff(got, want)
				t.Errorf("%v %s: pixels differ from DecodeFor+Resize (max %d at %d)", l, in.name, d, at)
			case res.Format == "":
				t.Errorf("%v %s: no format", l, in.name)
			}
		}
	}
}

func TestPreprocessLimits(t *testing.T) {
	data := encodeJPEG(t, photo(640, 480, 7), 90)
	l := Layout{224, 224, 3}
	dst := make([]byte, l.Len())
	p := Preprocessor{Layout: l, Limits: Limits{MaxPixels: 640*480 - 1}}
	if _, err := p.Preprocess(dst, data); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("pixel limit: err = %v, want ErrTooManyPixels", err)
	}
	p = Preprocessor{Layout: l, Limits: Limits{MaxBytes: int64(len(data) - 1)}}
	if _, err := p.Preprocess(dst, data); !errors.Is(err, ErrTooLarge) {
		t.Errorf("byte limit: err = %v, want ErrTooLarge", err)
	}
	p = Preprocessor{Layout: l}
	if _, err := p.Preprocess(dst, hugeJPEG(t, 50000, 50000)); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("50000x50000: err = %v, want ErrTooManyPixels", err)
	}
	if _, err := p.Preprocess(dst[:10], data); err == nil {
		t.Error("short destination accepted")
	}
	// A layout no model has is refused before anything is decoded.
	for _, bad := range []Layout{{}, {224, 224, 2}, {-1, 224, 3}} {
		p := Preprocessor{Layout: bad}
		if _, err := p.Preprocess(make([]byte, max(bad.Len(), 0)), data); err == nil {
			t.Errorf("layout %v accepted", bad)
		}
	}
}

// TestPreprocessSteadyState: same-sized JPEG frames, one after another,
// allocate nothing once the first has sized the buffers.
func TestPreprocessSteadyState(t *testing.T) {
	if !jpegScales {
		t.Skip("built without cgo: JPEGs go through image/jpeg, which allocates")
	}
	frames := [][]byte{encodeJPEG(t, photo(640, 480, 8), 90), encodeJPEG(t, photo(640, 480, 9), 80)}
	for _, l := range []Layout{{224, 224, 3}, {300, 300, 3}, {28, 28, 1}} {
		p := Preprocessor{Layout: l}
		dst := make([]byte, l.Len())
		k := 0
		run := func() {
			if _, err := p.Preprocess(dst, frames[k%2]); err != nil {
				t.Fatal(err)
			}
			k++
		}
		run()
		if n := testing.AllocsPerRun(50, run); n != 0 {
			t.Errorf("%v: %v allocations per frame, want 0", l, n)
		}
		p.Close()
	}
}

// TestPreprocessAfterClose: Close frees the decompressor, and the
// Preprocessor stays usable (the next JPEG makes a new one) with the same
// result; closing twice is harmless.
func TestPreprocessAfterClose(t *testing.T) {
	data := encodeJPEG(t, photo(640, 480, 10), 90)
	l := Layout{224, 224, 3}
	p := Preprocessor{Layout: l}
	first, again := make([]byte, l.Len()), make([]byte, l.Len())
	if _, err := p.Preprocess(first, data); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Preprocess(again, data); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if !bytes.Equal(first, again) {
		t.Error("after Close the same JPEG gave other pixels")
	}
	p.Close()
	p.Close()
}
