package imageio

import (
	"fmt"
	"time"
)

// Preprocessor turns encoded images into a model's input pixels, keeping
// its working memory between calls: the libjpeg-turbo decompressor, the
// buffer a JPEG is decoded into (at the reduced scale DecodeFor picks) and
// the Resizer's tables. In steady state - same-sized JPEG frames, no EXIF
// rotation - a call allocates nothing. Other formats, rotated JPEGs and
// whatever libjpeg-turbo refuses take DecodeFor's path, with its results and
// errors.
//
// A Preprocessor must not be used by more than one goroutine at a time;
// hold one per worker. The zero value is not usable: set Layout (and
// Limits, whose zero value means the defaults).
type Preprocessor struct {
	Layout Layout
	Limits Limits

	jpeg    jpegState
	resizer Resizer
}

// Preprocessed tells what Preprocess did.
type Preprocessed struct {
	// Format is the image format: "jpeg", "png", "gif", "bmp" or "webp".
	Format string
	// Decode is the time spent decoding (scaled, upright), Resize the time
	// spent resizing into the layout.
	Decode, Resize time.Duration
}

// Preprocess decodes data, with the limits and errors of DecodeFor, and
// writes it resized into dst, which must hold exactly Layout.Len() bytes.
func (p *Preprocessor) Preprocess(dst, data []byte) (Preprocessed, error) {
	var out Preprocessed
	if err := p.Layout.check(); err != nil {
		return out, err
	}
	if len(dst) != p.Layout.Len() {
		return out, fmt.Errorf("imageio: destination holds %d bytes, layout %dx%dx%d needs %d",
			len(dst), p.Layout.Width, p.Layout.Height, p.Layout.Channels, p.Layout.Len())
	}
	if dec, res, ok := p.jpeg.preprocess(dst, data, p.Limits, p.Layout, &p.resizer); ok {
		return Preprocessed{Format: "jpeg", Decode: dec, Resize: res}, nil
	}
	start := time.Now()
	img, format, err := DecodeFor(data, p.Limits, p.Layout)
	if err != nil {
		return out, err
	}
	out.Format = format
	decoded := time.Now()
	out.Decode = decoded.Sub(start)
	if err := p.resizer.Resize(dst, img, p.Layout); err != nil {
		return out, err
	}
	out.Resize = time.Since(decoded)
	return out, nil
}

// Close releases the C memory a Preprocessor holds (the libjpeg-turbo
// decompressor). A Preprocessor dropped without Close releases it when
// collected. It stays usable after Close: the next JPEG makes a new
// decompressor.
func (p *Preprocessor) Close() { p.jpeg.close() }
