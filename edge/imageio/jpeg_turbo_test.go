//go:build cgo

package imageio

import (
	"bytes"
	"image"
	"image/draw"
	"image/jpeg"
	"testing"
)

func toRGBA(m image.Image) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.Bounds().Dx(), m.Bounds().Dy()))
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

// At full size the libjpeg-turbo path shows the picture image/jpeg shows,
// up to IDCT rounding and chroma upsampling (interpolated rather than
// replicated).
func TestDecodeTurboMatchesImageJPEG(t *testing.T) {
	for _, size := range []image.Point{{640, 480}, {333, 197}} {
		data := encodeJPEG(t, photo(size.X, size.Y, 11), 90)
		turbo, _, err := Decode(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := turbo.(*image.RGBA); !ok {
			t.Fatalf("decoded %T, want libjpeg-turbo's *image.RGBA", turbo)
		}
		std, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		a, b := toRGBA(turbo), toRGBA(std)
		if a.Rect != b.Rect {
			t.Fatalf("bounds %v, image/jpeg %v", a.Rect, b.Rect)
		}
		var sum, n, worst int
		for i := 0; i < len(a.Pix); i++ {
			if i%4 == 3 {
				continue
			}
			d := int(a.Pix[i]) - int(b.Pix[i])
			if d < 0 {
				d = -d
			}
			sum += d
			n++
			worst = max(worst, d)
		}
		mean := float64(sum) / float64(n)
		t.Logf("%v: mean abs diff %.3f, max %d", size, mean, worst)
		if mean >= 2 || worst >= 12 {
			t.Errorf("%v: differs from image/jpeg: mean %.3f (want < 2), max %d (want < 12)", size, mean, worst)
		}
	}
}

// What the model sees: the 224x224 input from a scaled decode against the
// one from a full-size image/jpeg decode. They differ because DCT scaling
// averages where bilinear resizing skips pixels; on a smooth picture the
// difference stays small.
func TestDecodeForModelInputCloseToImageJPEG(t *testing.T) {
	l := Layout{224, 224, 3}
	for _, size := range []image.Point{{640, 480}, {1920, 1080}} {
		data := encodeJPEG(t, photo(size.X, size.Y, 12), 90)
		var inputs [2][]byte
		for i, dec := range []jpegDecoder{decodeJPEG, decodeStdJPEG} {
			img, _, err := decode(data, Limits{}, l, dec)
			if err != nil {
				t.Fatal(err)
			}
			inputs[i] = mustResize(t, img, l)
		}
		var sum int
		for i := range inputs[0] {
			d := int(inputs[0][i]) - int(inputs[1][i])
			sum += max(d, -d)
		}
		mean := float64(sum) / float64(len(inputs[0]))
		t.Logf("%v: model input mean abs diff %.2f", size, mean)
		// photo's per-pixel noise (sigma 6) is what averaging removes.
		if mean > 8 {
			t.Errorf("%v: model input differs from the image/jpeg path by %.2f on average", size, mean)
		}
	}
}

func TestDecodeForTurboSteadyState(t *testing.T) {
	data := encodeJPEG(t, photo(640, 480, 13), 90)
	l := Layout{224, 224, 3}
	if _, _, err := DecodeFor(data, Limits{}, l); err != nil {
		t.Fatal(err)
	}
	// Pooled decoder: the image itself is the only allocation of note
	// (plus a few small ones for the header check and orientation scan).
	n := testing.AllocsPerRun(20, func() {
		if _, _, err := DecodeFor(data, Limits{}, l); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("DecodeFor 640x480 to 224: %v allocations", n)
	if n > 10 {
		t.Errorf("DecodeFor allocates %v times per call, want a handful", n)
	}
}
