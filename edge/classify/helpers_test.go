package classify

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
)

func grayPNG(t *testing.T, pixels []byte) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, len(pixels), 1))
	copy(img.Pix, pixels)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// patternJPEG encodes a w x h image whose bytes step by step (quality 90).
func patternJPEG(t *testing.T, w, h int, step byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i) * step
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
