//go:build cgo

package jpegturbo

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <turbojpeg.h>

// ei_dec is a TurboJPEG decompressor, the results of its last header
// read, and room for its last error. Header results live in C memory
// because Go pointers passed to C escape to the heap: one allocation per
// call. The message is copied out in the same C call that failed:
// TurboJPEG keeps some messages in thread-local storage, and two cgo calls
// from one goroutine may run on different threads.
typedef struct {
	tjhandle h;
	int w, hgt, subsamp, cs;
	int code;
	char msg[256];
	// DecodeResized's working memory, kept between calls: the scaled RGB
	// image, and the resize's column table and two interpolated rows.
	unsigned char *img;
	size_t img_cap;
	int32_t *scratch;
	size_t scratch_cap;
	int64_t decode_ns;
} ei_dec;

static ei_dec *ei_new(void) {
	ei_dec *d = calloc(1, sizeof *d);
	if (d == NULL) return NULL;
	d->h = tjInitDecompress();
	if (d->h == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

static void ei_free(ei_dec *d) {
	if (d->h != NULL) tjDestroy(d->h);
	free(d->img);
	free(d->scratch);
	free(d);
}

// ei_fail records the error of the last call and replaces the handle.
// After some header errors libjpeg-turbo leaves the decompressor in the
// middle of a header (3.1: the next read fails with "two SOI markers"),
// and a fresh handle is the only state known to be clean. If none can be
// had, h stays NULL and every later call fails with "Invalid handle".
static void ei_fail(ei_dec *d) {
	d->code = tjGetErrorCode(d->h);
	snprintf(d->msg, sizeof d->msg, "%s", tjGetErrorStr2(d->h));
	if (d->h != NULL) tjDestroy(d->h);
	d->h = tjInitDecompress();
}

// ei_header reads a header. For a tables-only stream (no frame)
// tjDecompressHeader3 succeeds without reading a size: 2.1 leaves the
// outputs alone, hence the zeroing (and Go refuses zero); 3.x reports the
// handle's previous image instead, which cannot be told apart here.
// tjDecompress2 refuses such a stream either way.
static int ei_header(ei_dec *d, const unsigned char *buf, unsigned long n) {
	d->w = d->hgt = 0;
	d->subsamp = d->cs = -1;
	int rc = tjDecompressHeader3(d->h, buf, n, &d->w, &d->hgt, &d->subsamp, &d->cs);
	if (rc != 0) ei_fail(d);
	return rc;
}

// ei_factors returns TurboJPEG's scaling factors by value, so that Go
// passes no pointer (which would escape to the heap).
typedef struct {
	tjscalingfactor *f;
	int n;
} ei_sf;

static ei_sf ei_factors(void) {
	ei_sf sf = {NULL, 0};
	sf.f = tjGetScalingFactors(&sf.n);
	return sf;
}

// The bilinear resize below is edge/imageio's Resize for an opaque source,
// operation for operation, so that both give the same bytes (imageio's
// tests compare them): TensorFlow's sampling without half-pixel centres,
// 11-bit fixed-point weights, rows interpolated horizontally first.
#define EI_WBITS 11
#define EI_WONE (1 << EI_WBITS)

static void ei_coord(int64_t d, int64_t s, int64_t n, int *i, int *w) {
	int64_t p = d * s * EI_WONE / n;
	*i = (int)(p >> EI_WBITS);
	*w = (int)(p & (EI_WONE - 1));
}

// ei_row interpolates source row src (RGB) at every output column.
static void ei_row(int32_t *out, const unsigned char *src, const int32_t *x0, const int32_t *x1,
                   const int32_t *w, int n) {
	for (int i = 0; i < n; i++) {
		const unsigned char *a = src + 3 * x0[i], *b = src + 3 * x1[i];
		int32_t wi = w[i];
		out[3 * i] = ((int32_t)a[0] << EI_WBITS) + ((int32_t)b[0] - a[0]) * wi;
		out[3 * i + 1] = ((int32_t)a[1] << EI_WBITS) + ((int32_t)b[1] - a[1]) * wi;
		out[3 * i + 2] = ((int32_t)a[2] << EI_WBITS) + ((int32_t)b[2] - a[2]) * wi;
	}
}

static inline int32_t ei_vlerp(int32_t p, int32_t q, int32_t wy) {
	return ((p << EI_WBITS) + (q - p) * wy + (1 << (2 * EI_WBITS - 1))) >> (2 * EI_WBITS);
}

static void ei_resize(const unsigned char *src, int sw, int sh, unsigned char *dst, int dw, int dh,
                      int ch, int32_t *scratch) {
	int32_t *x0 = scratch, *x1 = x0 + dw, *wx = x1 + dw, *a = wx + dw, *b = a + 3 * dw;
	for (int i = 0; i < dw; i++) {
		int x, w;
		ei_coord(i, sw, dw, &x, &w);
		if (x == sw - 1 && sw > 1) {
			x = sw - 2;
			w = EI_WONE;
		}
		x0[i] = x;
		x1[i] = x + 1 < sw ? x + 1 : sw - 1;
		wx[i] = w;
	}
	int ay = -1, by = -1;
	for (int dy = 0; dy < dh; dy++) {
		int y0, wy;
		ei_coord(dy, sh, dh, &y0, &wy);
		int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
		if (y1 == y0) wy = 0;
		if (ay != y0) {
			if (by == y0) {
				int32_t *t = a; a = b; b = t;
				by = ay;
				ay = y0;
			} else {
				ei_row(a, src + (size_t)y0 * sw * 3, x0, x1, wx, dw);
				ay = y0;
			}
		}
		if (wy != 0 && by != y1) {
			ei_row(b, src + (size_t)y1 * sw * 3, x0, x1, wx, dw);
			by = y1;
		}
		unsigned char *o = dst + (size_t)dy * dw * ch;
		if (ch == 1) {
			for (int i = 0; i < dw; i++) {
				int32_t r = ei_vlerp(a[3 * i], b[3 * i], wy);
				int32_t g = ei_vlerp(a[3 * i + 1], b[3 * i + 1], wy);
				int32_t bl = ei_vlerp(a[3 * i + 2], b[3 * i + 2], wy);
				o[i] = (unsigned char)((19595 * r + 38470 * g + 7471 * bl + (1 << 15)) >> 16);
			}
		} else {
			for (int i = 0; i < 3 * dw; i++) {
				o[i] = (unsigned char)ei_vlerp(a[i], b[i], wy);
			}
		}
	}
}

static int64_t ei_now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// ei_keep_bytes: DecodeResized keeps buffers up to this size between calls
// and frees larger ones after use, so that one big image does not pin its
// memory for the decoder's life.
#define EI_KEEP_BYTES (16u << 20)

static void *ei_grow(void **p, size_t *cap, size_t need) {
	if (need > *cap) {
		free(*p);
		*p = malloc(need);
		*cap = *p != NULL ? need : 0;
	}
	return *p;
}

static void ei_trim(void **p, size_t *cap) {
	if (*cap > EI_KEEP_BYTES) {
		free(*p);
		*p = NULL;
		*cap = 0;
	}
}

// ei_decode_resized decodes at sw x sh (a TurboJPEG scaling of the image)
// into the decoder's RGB buffer, then resizes that into dst: dw x dh x ch.
static int ei_decode_resized(ei_dec *d, const unsigned char *buf, unsigned long n, int sw, int sh,
                             unsigned char *dst, int dw, int dh, int ch, int flags) {
	if (ei_grow((void **)&d->img, &d->img_cap, (size_t)sw * sh * 3) == NULL ||
	    ei_grow((void **)&d->scratch, &d->scratch_cap, (size_t)dw * 9 * sizeof(int32_t)) == NULL) {
		d->code = TJERR_FATAL;
		snprintf(d->msg, sizeof d->msg, "out of memory for a %dx%d image", sw, sh);
		return -1;
	}
	int64_t t0 = ei_now_ns();
	int rc = tjDecompress2(d->h, buf, n, d->img, sw, sw * 3, sh, TJPF_RGB, flags);
	if (rc != 0) {
		ei_fail(d);
	} else {
		d->decode_ns = ei_now_ns() - t0;
		ei_resize(d->img, sw, sh, dst, dw, dh, ch, d->scratch);
	}
	ei_trim((void **)&d->img, &d->img_cap);
	ei_trim((void **)&d->scratch, &d->scratch_cap);
	return rc;
}

static int ei_decompress(ei_dec *d, const unsigned char *buf, unsigned long n,
                         unsigned char *dst, int w, int h, int flags) {
	int rc = tjDecompress2(d->h, buf, n, dst, w, w * 4, h, TJPF_RGBA, flags);
	if (rc != 0) ei_fail(d);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// Colour spaces a JPEG header can declare (Header's colorspace), as
// TurboJPEG's TJCS_* values.
const (
	ColorspaceRGB   = C.TJCS_RGB
	ColorspaceYCbCr = C.TJCS_YCbCr
	ColorspaceGray  = C.TJCS_GRAY
	ColorspaceCMYK  = C.TJCS_CMYK
	ColorspaceYCCK  = C.TJCS_YCCK
)

// Chroma subsampling levels (Header's subsamp), as TurboJPEG's TJSAMP_*
// values. libjpeg-turbo 3.x adds 4:4:1, which Header may also return.
const (
	Subsamp444  = C.TJSAMP_444
	Subsamp422  = C.TJSAMP_422
	Subsamp420  = C.TJSAMP_420
	SubsampGray = C.TJSAMP_GRAY
	Subsamp440  = C.TJSAMP_440
	Subsamp411  = C.TJSAMP_411
)

// flags for every decompression. TJFLAG_STOPONWARNING turns libjpeg-turbo's
// repairs (premature end of data, corrupt entropy data) into errors, and
// stops at once instead of decoding the rest of a damaged image.
// TJFLAG_LIMITSCANS refuses progressive images with more than 500 scans,
// whose decoding time has no useful bound. Not set: TJFLAG_FASTDCT (less
// accurate IDCT) and TJFLAG_FASTUPSAMPLE (nearest-neighbour chroma at full
// scale; at the reduced scales a model input uses, libjpeg-turbo scales
// 4:2:0 chroma in the IDCT and never upsamples, so it would buy nothing
// there).
const flags = C.TJFLAG_STOPONWARNING | C.TJFLAG_LIMITSCANS

// ErrUnsupported means the JPEG is well formed as far as its header goes
// but is one this package does not decode to RGB: CMYK or YCCK colour. A
// caller should fall back to another decoder.
var ErrUnsupported = errors.New("unsupported JPEG")

// Error is a failure reported by libjpeg-turbo: damaged data, or a
// feature the library was not built for (12-bit samples in an 8-bit
// decoder, unusual sampling factors).
type Error struct {
	Op  string // what was being done: "reading header" or "decompressing"
	Msg string // libjpeg-turbo's message
	// Warning is set when libjpeg-turbo only warned (TJERR_WARNING): the
	// data is damaged - typically truncated - and it could have gone on
	// with a repaired, partly grey, image.
	Warning bool
}

func (e *Error) Error() string {
	kind := "error"
	if e.Warning {
		kind = "warning"
	}
	return fmt.Sprintf("jpegturbo: %s: %s: %s", e.Op, kind, e.Msg)
}

// Decoder is a TurboJPEG decompressor. It holds C memory: Close releases
// it. A Decoder that is garbage collected without Close is released then
// (so decoders may live in a sync.Pool), but Close is the timely way. A
// Decoder must not be used by more than one goroutine at a time.
type Decoder struct {
	c       *C.ei_dec
	cleanup runtime.Cleanup
}

// NewDecoder returns a Decoder ready for use.
func NewDecoder() (*Decoder, error) {
	c := C.ei_new()
	if c == nil {
		return nil, errors.New("jpegturbo: cannot create a decompressor (out of memory)")
	}
	d := &Decoder{c: c}
	d.cleanup = runtime.AddCleanup(d, func(c *C.ei_dec) { C.ei_free(c) }, c)
	return d, nil
}

// Close releases the decompressor. It is safe to call more than once; a
// closed Decoder returns errors.
func (d *Decoder) Close() {
	if d.c == nil {
		return
	}
	d.cleanup.Stop()
	C.ei_free(d.c)
	d.c = nil
}

// Header reads the JPEG header in data and reports the image size, its
// chroma subsampling (a Subsamp* value) and its colour space (a
// Colorspace* value). It allocates no pixel memory.
//
// A stream holding only tables and no image is an error with libjpeg-turbo
// 2.x; 3.x reports the header this Decoder read last instead (DecodeScaled
// then fails on it).
func (d *Decoder) Header(data []byte) (width, height, subsamp, colorspace int, err error) {
	if err := d.check(data); err != nil {
		return 0, 0, 0, 0, err
	}
	rc := C.ei_header(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)))
	// The cleanup must not free d.c while C still uses it.
	runtime.KeepAlive(d)
	if rc != 0 {
		return 0, 0, 0, 0, d.err("reading header")
	}
	width, height = int(d.c.w), int(d.c.hgt)
	if width <= 0 || height <= 0 {
		return 0, 0, 0, 0, &Error{Op: "reading header", Msg: "no image in the data (tables only)"}
	}
	return width, height, int(d.c.subsamp), int(d.c.cs), nil
}

// DecodeScaled decodes the JPEG in data, scaled down in the DCT domain by
// the smallest factor libjpeg-turbo offers (ScaledSize) that keeps the
// image at least minW x minH, or not at all when the image is smaller than
// that. Scaling never enlarges: resizing the result to a model input of
// minW x minH never samples more finely than the source.
//
// The pixels are written into dst's buffer when its capacity suffices, and
// dst itself is then returned with its bounds set to the scaled size at
// origin 0,0; otherwise a new image is allocated. So repeated decodes of
// same-sized frames into the previous result allocate nothing. dst may be
// nil. Alpha is always 255.
//
// DecodeScaled allocates what the header declares (scaled): check Header
// against a memory budget first when data is untrusted.
//
// Errors: ErrUnsupported (wrapped) for CMYK and YCCK images; an *Error for
// anything libjpeg-turbo refuses, warnings included, so truncated or
// corrupt data is always an error. On error dst's pixels are undefined and
// the returned image is nil.
func (d *Decoder) DecodeScaled(data []byte, minW, minH int, dst *image.RGBA) (*image.RGBA, error) {
	w, h, _, cs, err := d.Header(data)
	if err != nil {
		return nil, err
	}
	if cs == ColorspaceCMYK || cs == ColorspaceYCCK {
		// tjDecompress2 cannot convert these to RGB.
		return nil, fmt.Errorf("jpegturbo: %s colour: %w", colorspaceName(cs), ErrUnsupported)
	}
	sw, sh := ScaledSize(w, h, minW, minH)
	if sw <= 0 || sh <= 0 || int64(sw)*int64(sh)*4 > math.MaxInt {
		return nil, fmt.Errorf("jpegturbo: cannot hold a %dx%d image in memory", sw, sh)
	}
	img := reuse(dst, sw, sh)
	// tjDecompress2 reads the header again and picks the largest scaling
	// factor whose result fits in sw x sh: the one chosen above, or one
	// giving the same size. The buffer is therefore never overrun, even if
	// data changed in between.
	rc := C.ei_decompress(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&img.Pix[0])), C.int(sw), C.int(sh), flags)
	runtime.KeepAlive(d)
	if rc != 0 {
		return nil, d.err("decompressing")
	}
	return img, nil
}

// DecodeResized decodes the JPEG in data scaled as DecodeScaled(data, w,
// h) does, and resizes it bilinearly to w x h into dst, which must hold
// w*h*channels bytes: packed RGB rows for channels 3, BT.601 luma for
// channels 1. The resize is edge/imageio's Resize for an opaque image,
// computed identically (TensorFlow's bilinear sampling, 11-bit
// fixed-point weights), but in C and in the same call as the decode, into
// memory the Decoder keeps: steady state allocates nothing. EXIF
// orientation is not applied. It returns the part of the time spent
// decoding; the rest was resizing.
//
// Errors are those of DecodeScaled; on error dst's contents are undefined.
func (d *Decoder) DecodeResized(data, dst []byte, w, h, channels int) (time.Duration, error) {
	if channels != 1 && channels != 3 {
		return 0, fmt.Errorf("jpegturbo: %d channels, want 1 or 3", channels)
	}
	if w <= 0 || h <= 0 || w > maxDim || h > maxDim || len(dst) != w*h*channels {
		return 0, fmt.Errorf("jpegturbo: destination of %d bytes for %dx%dx%d", len(dst), w, h, channels)
	}
	iw, ih, _, cs, err := d.Header(data)
	if err != nil {
		return 0, err
	}
	if cs == ColorspaceCMYK || cs == ColorspaceYCCK {
		return 0, fmt.Errorf("jpegturbo: %s colour: %w", colorspaceName(cs), ErrUnsupported)
	}
	sw, sh := ScaledSize(iw, ih, w, h)
	if sw <= 0 || sh <= 0 || sw > maxDim || sh > maxDim || int64(sw)*int64(sh)*3 > math.MaxInt {
		return 0, fmt.Errorf("jpegturbo: cannot hold a %dx%d image in memory", sw, sh)
	}
	rc := C.ei_decode_resized(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(sw), C.int(sh),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(w), C.int(h), C.int(channels), flags)
	runtime.KeepAlive(d)
	if rc != 0 {
		return 0, d.err("decompressing")
	}
	return time.Duration(d.c.decode_ns), nil
}

// maxDim bounds the sizes DecodeResized works with, as edge/imageio's
// resize does: coordinates times sizes times 2048 stay inside int64.
const maxDim = 1 << 24

// ScaledSize returns the size a width x height JPEG is decoded to by
// DecodeScaled with minW x minH: scaled by the smallest of
// tjGetScalingFactors' factors not above 1 for which both sides stay at
// least minW and minH (rounded up, as TJSCALED does), or unscaled when
// even 1/1 is smaller. Non-positive minW and minH ask for no minimum.
func ScaledSize(width, height, minW, minH int) (int, int) {
	sf := C.ei_factors()
	bw, bh := width, height // 1/1, which every build offers
	if sf.f == nil || sf.n <= 0 {
		return bw, bh
	}
	for _, f := range unsafe.Slice(sf.f, int(sf.n)) {
		num, den := int64(f.num), int64(f.denom)
		if num <= 0 || den <= 0 || num > den {
			continue
		}
		sw, sh := scaled(width, num, den), scaled(height, num, den)
		if sw >= minW && sh >= minH && sw <= bw && sh <= bh {
			bw, bh = sw, sh
		}
	}
	return bw, bh
}

// scaled is TurboJPEG's TJSCALED: dim*num/den rounded up.
func scaled(dim int, num, den int64) int {
	return int((int64(dim)*num + den - 1) / den)
}

func (d *Decoder) check(data []byte) error {
	if d.c == nil {
		return errors.New("jpegturbo: use of a closed Decoder")
	}
	if len(data) == 0 {
		return &Error{Op: "reading header", Msg: "empty input"}
	}
	if uint64(len(data)) > math.MaxUint32 {
		// tjDecompress2 takes an unsigned long, 32 bits on armhf.
		return &Error{Op: "reading header", Msg: "input larger than 4 GB"}
	}
	return nil
}

func (d *Decoder) err(op string) error {
	return &Error{
		Op:      op,
		Msg:     C.GoString(&d.c.msg[0]),
		Warning: d.c.code == C.TJERR_WARNING,
	}
}

// reuse returns dst reshaped to w x h when its buffer is large enough,
// else a new image.
func reuse(dst *image.RGBA, w, h int) *image.RGBA {
	n := w * h * 4
	if dst == nil || cap(dst.Pix) < n {
		return image.NewRGBA(image.Rect(0, 0, w, h))
	}
	dst.Pix = dst.Pix[:n]
	dst.Stride = 4 * w
	dst.Rect = image.Rect(0, 0, w, h)
	return dst
}

func colorspaceName(cs int) string {
	switch cs {
	case ColorspaceCMYK:
		return "CMYK"
	case ColorspaceYCCK:
		return "YCCK"
	}
	return fmt.Sprint("colour space ", cs)
}
