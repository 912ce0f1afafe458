//go:build cgo

package imageio

import (
	"image"
	"sync"

	"github.com/edgeinfer/edgeinfer/edge/jpegturbo"
)

// jpegScales reports whether JPEGs are decoded scaled (by libjpeg-turbo).
const jpegScales = true

// turboDecoders holds idle libjpeg-turbo decompressors. Creating one costs
// C allocations and a few microseconds; a Decoder the pool drops frees its
// C memory when collected.
var turboDecoders sync.Pool // *jpegturbo.Decoder

// decodeJPEG decodes with libjpeg-turbo, scaled, and falls back to
// image/jpeg at full size whenever libjpeg-turbo refuses the data. That
// covers what it cannot decode to RGB (CMYK, YCCK, 12-bit) and damaged
// data, for which image/jpeg's verdict and error are the ones callers have
// always had. A damaged image thus costs two decode attempts; a good one,
// one.
func decodeJPEG(data []byte, cfg image.Config, least image.Point) (image.Image, error) {
	if img := decodeTurbo(data, cfg, least); img != nil {
		return img, nil
	}
	return decodeStdJPEG(data, cfg, least)
}

// decodeTurbo returns nil when libjpeg-turbo cannot decode data.
func decodeTurbo(data []byte, cfg image.Config, least image.Point) *image.RGBA {
	d, _ := turboDecoders.Get().(*jpegturbo.Decoder)
	if d == nil {
		var err error
		if d, err = jpegturbo.NewDecoder(); err != nil {
			return nil
		}
	}
	defer turboDecoders.Put(d)
	// The pixel limits were checked against image/jpeg's reading of the
	// header; decode with libjpeg-turbo only if it reads the same size, so
	// that no difference between the two parsers can get past them.
	if w, h, _, _, err := d.Header(data); err != nil || w != cfg.Width || h != cfg.Height {
		return nil
	}
	img, err := d.DecodeScaled(data, least.X, least.Y, nil)
	if err != nil {
		return nil
	}
	return img
}
