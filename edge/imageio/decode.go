package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// Default limits used when the corresponding Limits field is zero.
const (
	// DefaultMaxBytes is the largest encoded image accepted by default.
	DefaultMaxBytes = 32 << 20

	// DefaultMaxPixels is the largest width*height accepted by default.
	// Decoded images cost up to 4 bytes per pixel, so this bounds a
	// single decode to roughly 160 MB.
	DefaultMaxPixels = 40_000_000
)

// Sentinel errors returned (wrapped) by ReadAll and Decode. Test for them
// with errors.Is; the wrapping error carries the detail.
var (
	// ErrEmpty means the input held no bytes at all.
	ErrEmpty = errors.New("empty image")

	// ErrTooLarge means the encoded input is larger than Limits.MaxBytes.
	ErrTooLarge = errors.New("image too large")

	// ErrTooManyPixels means the dimensions declared in the image header
	// exceed Limits.MaxPixels. It is reported before any pixel memory is
	// allocated.
	ErrTooManyPixels = errors.New("image has too many pixels")

	// ErrUnknownFormat means the input is not an image in a supported
	// format, or uses a variant of it that the decoders do not implement.
	ErrUnknownFormat = errors.New("unknown image format")

	// ErrCorrupt means the input looked like a supported format but is
	// truncated or otherwise malformed.
	ErrCorrupt = errors.New("corrupt image")
)

// Limits bound what Decode accepts from outside.
type Limits struct {
	MaxBytes  int64 // largest encoded input accepted; 0 means DefaultMaxBytes
	MaxPixels int64 // largest width*height accepted; 0 means DefaultMaxPixels
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

// ReadAll reads r to EOF and returns the bytes, reading at most limit+1
// bytes from r. If r holds more than limit bytes it returns an error
// wrapping ErrTooLarge instead of buffering the rest. A limit <= 0 means
// DefaultMaxBytes.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	limit = min(limit, math.MaxInt64-1) // Keep limit+1 from overflowing.
	// One byte beyond the limit is enough to tell "exactly limit" from
	// "more than limit" without trusting any length the peer announced.
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("imageio: reading image: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("imageio: input exceeds %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}

// Decode decodes an image held in data: JPEG, PNG, GIF (first frame only),
// BMP or WebP. It returns the image and the format name ("jpeg", "png",
// "gif", "bmp" or "webp"). It is DecodeFor with no size wish: the image
// comes back at full size.
//
// The header is decoded first and images whose declared width or height is
// not positive, or whose width*height exceeds lim.MaxPixels, are rejected
// before pixel memory is allocated. JPEG images carrying an EXIF
// orientation are returned already rotated or flipped upright. A GIF whose
// first frame does not cover the logical screen is returned composited onto
// a transparent canvas of the screen's size.
//
// Every error wraps exactly one of ErrEmpty, ErrTooLarge, ErrTooManyPixels,
// ErrUnknownFormat or ErrCorrupt. Decoder failures, including truncated
// input (io.ErrUnexpectedEOF) and panics inside a decoder, are reported as
// ErrCorrupt; the underlying decoder error is wrapped as well. Decoders'
// "unsupported feature" errors (for example 12-bit JPEG) are
// reported as ErrUnknownFormat. On error the format is still returned if the
// signature was recognised, which helps in logs; the image is always nil.
//
// Built with cgo, JPEG is decoded by libjpeg-turbo (edge/jpegturbo) into an
// *image.RGBA, with image/jpeg as the fallback for whatever libjpeg-turbo
// refuses - CMYK and YCCK images, damaged data. image/jpeg still reads the
// header first and has the last word on failures, so the set of images
// accepted and the errors returned are the same with and without cgo.
func Decode(data []byte, lim Limits) (image.Image, string, error) {
	return decode(data, lim, Layout{}, decodeJPEG)
}

// DecodeFor is Decode for an image headed for a model input of want's
// size: a JPEG is decoded scaled down in the DCT domain, by the smallest
// factor libjpeg-turbo offers (1/8 to 7/8) that leaves the upright image at
// least want.Width x want.Height - or at full size when it is not larger
// than that - so that resizing to want afterwards never samples more
// finely than the source, and a 1080p frame costs little. EXIF orientations
// that turn the picture by 90 degrees swap the wish accordingly. Other
// formats, a want with a non-positive width or height, and builds without
// cgo decode at full size. Limits apply to the size the header declares,
// not the scaled one.
func DecodeFor(data []byte, lim Limits, want Layout) (image.Image, string, error) {
	return decode(data, lim, want, decodeJPEG)
}

// jpegDecoder decodes a JPEG whose header declared cfg, scaled to no less
// than least where the source is larger; the returned image may be larger
// than least.
type jpegDecoder func(data []byte, cfg image.Config, least image.Point) (image.Image, error)

// decodeStdJPEG is the pure-Go jpegDecoder: image/jpeg at full size.
func decodeStdJPEG(data []byte, _ image.Config, _ image.Point) (image.Image, error) {
	return jpeg.Decode(bytes.NewReader(data))
}

// decode is DecodeFor with the JPEG decoder as a parameter, so that tests
// and benchmarks can compare the decoders in one build.
func decode(data []byte, lim Limits, want Layout, decJPEG jpegDecoder) (img image.Image, format string, err error) {
	if len(data) == 0 {
		return nil, "", fmt.Errorf("imageio: %w", ErrEmpty)
	}
	if n, limit := int64(len(data)), lim.maxBytes(); n > limit {
		return nil, "", fmt.Errorf("imageio: input is %d bytes, limit is %d: %w", n, limit, ErrTooLarge)
	}
	format = sniff(data)
	if format == "" {
		return nil, "", fmt.Errorf("imageio: unrecognised signature: %w", ErrUnknownFormat)
	}
	defer func() {
		// The standard decoders are well fuzzed, but this runs on bytes
		// from the network inside a long-lived daemon: one bad input must
		// not take every in-flight request down with it.
		if p := recover(); p != nil {
			img = nil
			err = fmt.Errorf("imageio: decoding %s: panic: %v: %w", format, p, ErrCorrupt)
		}
	}()

	cfg, err := decodeConfig(format, data)
	if err != nil {
		return nil, format, decodeError(format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("imageio: %s header declares %dx%d: %w", format, cfg.Width, cfg.Height, ErrCorrupt)
	}
	if px, limit := int64(cfg.Width)*int64(cfg.Height), lim.maxPixels(); px > limit {
		return nil, format, fmt.Errorf("imageio: %s header declares %dx%d = %d pixels, limit is %d: %w",
			format, cfg.Width, cfg.Height, px, limit, ErrTooManyPixels)
	}

	orientation := 1
	if format == "jpeg" {
		orientation = jpegOrientation(data)
		img, err = decJPEG(data, cfg, jpegWish(want, cfg, orientation))
	} else {
		img, err = decodeImage(format, data)
	}
	if err != nil {
		return nil, format, decodeError(format, err)
	}
	if img == nil {
		return nil, format, fmt.Errorf("imageio: %s decoder returned no image: %w", format, ErrCorrupt)
	}

	switch format {
	case "jpeg":
		if orientation != 1 {
			img = orient(img, orientation)
		}
	case "gif":
		img = gifCanvas(img, cfg)
	}

	// The header check above is what protects memory; this one only
	// guarantees callers the invariant they will rely on.
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > lim.maxPixels() {
		return nil, format, fmt.Errorf("imageio: %s decoded to %v, header declared %dx%d: %w",
			format, b, cfg.Width, cfg.Height, ErrCorrupt)
	}
	return img, format, nil
}

// sniff identifies the format from its signature. It deliberately does not
// use image.DecodeConfig: that consults a process-wide registry which any
// imported package can extend, and the set of formats reachable from
// untrusted input should be exactly the one documented here.
func sniff(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0xff && b[1] == 0xd8:
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case bytes.HasPrefix(b, []byte("BM")):
		return "bmp"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

func decodeConfig(format string, data []byte) (image.Config, error) {
	r := bytes.NewReader(data)
	switch format {
	case "jpeg":
		return jpeg.DecodeConfig(r)
	case "png":
		return png.DecodeConfig(r)
	case "gif":
		return gif.DecodeConfig(r)
	case "bmp":
		return bmp.DecodeConfig(r)
	case "webp":
		return webp.DecodeConfig(r)
	}
	panic("imageio: unreachable format " + format)
}

// jpegWish is the least size a JPEG with header cfg and EXIF orientation o
// should be decoded to for want: want in the stored picture's frame
// (orientations 5 to 8 turn it by 90 degrees), or the full size when there
// is no wish.
func jpegWish(want Layout, cfg image.Config, o int) image.Point {
	switch {
	case want.Width <= 0 || want.Height <= 0:
		return image.Pt(cfg.Width, cfg.Height)
	case o >= 5:
		return image.Pt(want.Height, want.Width)
	}
	return image.Pt(want.Width, want.Height)
}

// decodeImage decodes the formats other than JPEG.
func decodeImage(format string, data []byte) (image.Image, error) {
	r := bytes.NewReader(data)
	switch format {
	case "png":
		return png.Decode(r)
	case "gif":
		// gif.Decode stops after the first frame, so later frames can
		// neither cost memory nor time.
		return gif.Decode(r)
	case "bmp":
		return bmp.Decode(r)
	case "webp":
		return webp.Decode(r)
	}
	panic("imageio: unreachable format " + format)
}

// decodeError maps a decoder error onto the package's sentinels, keeping the
// decoder's own error in the chain for callers that want it.
func decodeError(format string, err error) error {
	var (
		jpegUnsupported jpeg.UnsupportedError
		pngUnsupported  png.UnsupportedError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("imageio: decoding %s: truncated data: %w: %w", format, ErrCorrupt, err)
	case errors.As(err, &jpegUnsupported), errors.As(err, &pngUnsupported), errors.Is(err, bmp.ErrUnsupported):
		return fmt.Errorf("imageio: decoding %s: %w: %w", format, ErrUnknownFormat, err)
	}
	return fmt.Errorf("imageio: decoding %s: %w: %w", format, ErrCorrupt, err)
}

// gifCanvas places a first frame that does not cover the whole logical
// screen onto a transparent screen-sized canvas, so that later resizing sees
// the picture the author laid out rather than a cropped fragment of it.
func gifCanvas(img image.Image, cfg image.Config) image.Image {
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if img.Bounds() == screen {
		return img
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, img.Bounds(), img, img.Bounds().Min, draw.Src)
	return canvas
}
