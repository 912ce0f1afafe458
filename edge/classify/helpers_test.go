package classify

import (
	"bytes"
	"image"
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
