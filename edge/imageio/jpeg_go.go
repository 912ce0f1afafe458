//go:build !cgo

package imageio

import (
	"image"
	"time"
)

// jpegScales reports whether JPEGs are decoded scaled (by libjpeg-turbo).
// Without cgo image/jpeg decodes them, at full size.
const jpegScales = false

// decodeJPEG is image/jpeg.
func decodeJPEG(data []byte, cfg image.Config, least image.Point) (image.Image, error) {
	return decodeStdJPEG(data, cfg, least)
}

// jpegState has no fast path without cgo: Preprocessor decodes through
// DecodeFor.
type jpegState struct{}

func (*jpegState) preprocess([]byte, []byte, Limits, Layout, *Resizer) (decode, resize time.Duration, ok bool) {
	return 0, 0, false
}

func (*jpegState) close() {}
