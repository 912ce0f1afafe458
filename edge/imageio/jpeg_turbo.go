//go:build cgo

package imageio

import (
	"image"
	"sync"
	"time"

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

// jpegState is a Preprocessor's libjpeg-turbo decompressor and the image
// it decodes rotated JPEGs into, reused from call to call.
type jpegState struct {
	dec *jpegturbo.Decoder
	img *image.RGBA
}

// preprocess decodes data into dst at the layout's size when it is a JPEG
// libjpeg-turbo takes and the limits allow, reusing the state's memory;
// otherwise it returns false and the caller takes the general path, which
// gives the verdict and error for anything refused here. An upright JPEG
// (the camera case) is decoded and resized in one C call; one with an
// EXIF rotation is decoded scaled, turned upright, then resized in Go, with
// the same result as DecodeFor and Resize.
func (s *jpegState) preprocess(dst, data []byte, lim Limits, l Layout, r *Resizer) (decode, resize time.Duration, ok bool) {
	if sniff(data) != "jpeg" || int64(len(data)) > lim.maxBytes() {
		return 0, 0, false
	}
	if s.dec == nil {
		d, err := jpegturbo.NewDecoder()
		if err != nil {
			return 0, 0, false
		}
		s.dec = d
	}
	start := time.Now()
	// The frame size comes from the segment walk, which the fast path
	// needs anyway (frameOK); DecodeResized and DecodeScaled read the
	// header once more in C and refuse CMYK and YCCK, which image/jpeg
	// decodes on the general path.
	info := jpegHeaders(data)
	w, h, o := info.width, info.height, info.orientation
	if !info.frameOK || w == 0 || h == 0 || int64(w)*int64(h) > lim.maxPixels() {
		return 0, 0, false
	}
	if o == 1 {
		dec, err := s.dec.DecodeResized(data, dst, l.Width, l.Height, l.Channels)
		if err != nil {
			return 0, 0, false
		}
		return dec, time.Since(start) - dec, true
	}
	least := jpegWish(l, image.Config{Width: w, Height: h}, o)
	img, err := s.dec.DecodeScaled(data, least.X, least.Y, s.img)
	if err != nil {
		return 0, 0, false
	}
	s.img = img
	up := orient(img, o)
	decoded := time.Now()
	if err := r.Resize(dst, up, l); err != nil {
		return 0, 0, false
	}
	return decoded.Sub(start), time.Since(decoded), true
}

func (s *jpegState) close() {
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
}
