package imageio

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
)

// Layout is the pixel layout a model wants: Width x Height pixels, Channels
// 1 (grayscale) or 3 (RGB), row-major HWC, 8 bits per channel.
type Layout struct {
	Width, Height, Channels int
}

// Len returns the number of bytes an image in layout l occupies.
func (l Layout) Len() int {
	return l.Width * l.Height * l.Channels
}

// maxDim bounds every source and destination dimension. It keeps the
// fixed-point coordinate arithmetic (dimension * dimension * wOne) well
// inside int64 and the coordinate tables inside int32, and no real image or
// model comes near it.
const maxDim = 1 << 24

func (l Layout) check() error {
	if l.Width <= 0 || l.Height <= 0 || l.Width > maxDim || l.Height > maxDim {
		return fmt.Errorf("imageio: invalid layout size %dx%d", l.Width, l.Height)
	}
	if l.Channels != 1 && l.Channels != 3 {
		return fmt.Errorf("imageio: invalid layout channel count %d, want 1 or 3", l.Channels)
	}
	if int64(l.Width)*int64(l.Height)*int64(l.Channels) > math.MaxInt {
		return fmt.Errorf("imageio: layout %dx%dx%d overflows int", l.Width, l.Height, l.Channels)
	}
	return nil
}

// stackWidth is the widest layout Resize handles without allocating: its
// scratch space (68 bytes per output column) then fits in the caller's
// stack frame.
const stackWidth = 1024

// Resize scales src to l with bilinear interpolation and writes the result
// into dst as packed row-major HWC bytes; len(dst) must equal l.Len().
//
// Sampling follows TensorFlow's bilinear resize with align_corners=false
// and half_pixel_centers=false (tf.compat.v1.image.resize_bilinear's
// defaults, and TFLite RESIZE_BILINEAR's): output pixel (x, y) samples
// source coordinate (x*srcW/dstW, y*srcH/dstH), and the neighbour
// below/right of the last row/column is clamped to it. Like TensorFlow
// without antialiasing, a strong downscale therefore skips source pixels
// rather than averaging them, which is what models trained on that
// preprocessing expect. Weights are 11-bit fixed point; results are within
// 1 of an exact float computation.
//
// Pixels that are not fully opaque are composited onto white, not black:
// transparent regions of logos and icons are almost always meant to be
// seen on a light background. Sources with 16 bits per channel contribute
// their high byte. One-channel output is ITU-R BT.601 luma,
// 0.299R + 0.587G + 0.114B, rounded.
//
// *image.YCbCr (any subsampling ratio), *image.NYCbCrA, *image.RGBA,
// *image.NRGBA, *image.RGBA64, *image.NRGBA64, *image.Gray,
// *image.Gray16, *image.CMYK and *image.Paletted are read directly and
// allocate nothing for layouts up to 1024 pixels wide; wider layouts
// allocate a scratch table per call, which Resizer avoids. Any other
// image.Image is read through its At method, which is much slower and
// allocates per pixel.
func Resize(dst []byte, src image.Image, l Layout) error {
	if err := l.check(); err != nil {
		return err
	}
	if l.Width <= stackWidth {
		var (
			xs     [stackWidth]xEntry
			a, b   [stackWidth]rgb
			chroma [stackWidth]chromaPair
		)
		n := l.Width
		t := xTable{xs: xs[:n]}
		return resize(dst, src, l, &t, scratch{a[:n], b[:n], chroma[:n]})
	}
	var r Resizer
	return r.Resize(dst, src, l)
}

// Resizer is a Resize that keeps its coordinate tables and row buffers
// between calls, so that repeated calls with the same source geometry and
// layout allocate nothing. The zero value is ready to use. A Resizer must
// not be used by more than one goroutine at a time.
type Resizer struct {
	t xTable
	s scratch
}

// Resize is like the package-level Resize.
func (r *Resizer) Resize(dst []byte, src image.Image, l Layout) error {
	if err := l.check(); err != nil {
		return err
	}
	n := l.Width
	if cap(r.t.xs) < n {
		r.t = xTable{xs: make([]xEntry, n)}
		r.s = scratch{make([]rgb, n), make([]rgb, n), make([]chromaPair, n)}
	}
	if len(r.t.xs) != n {
		r.t.xs, r.t.valid = r.t.xs[:n], false
	}
	return resize(dst, src, l, &r.t, scratch{r.s.a[:n], r.s.b[:n], r.s.chroma[:n]})
}

// scratch is the per-call working memory of resize, one element per output
// column: two horizontally interpolated rows and, for YCbCr sources, the
// chroma terms of both samples of every column.
type scratch struct {
	a, b   []rgb
	chroma []chromaPair
}

// rgb is a horizontally interpolated, white-composited colour scaled by
// wOne.
type rgb [3]int32

// chromaPair holds the R, G and B chroma terms of color.YCbCrToRGB for the
// two samples of an output column.
type chromaPair [6]int32

// Interpolation weights are fixed point with wBits fractional bits. With
// 11 bits a fully interpolated value (255 << 22 at most) still fits an
// int32, which keeps the inner loops in 32-bit arithmetic on 32-bit ARM
// boards too, and the weight quantisation error stays below 0.25 of a
// code value.
const (
	wBits = 11
	wOne  = 1 << wBits
)

// xEntry describes, for one output column, the two source columns it
// samples and the weight of the second one.
type xEntry struct {
	x0, x1 uint32 // source columns relative to Bounds().Min.X; x1 == x0+1 unless the source is 1 wide
	c0, c1 uint32 // chroma columns for YCbCr sources, as COffset computes them
	w      int32  // weight of x1 in 1/wOne
}

// xTable is an xEntry per output column plus what it was computed for.
type xTable struct {
	xs    []xEntry
	valid bool
	minX  int // source Bounds().Min.X
	srcW  int
	hs    int // horizontal chroma subsampling factor, 1 if not YCbCr
}

func (t *xTable) fill(minX, srcW, hs int) {
	if t.valid && t.minX == minX && t.srcW == srcW && t.hs == hs {
		return
	}
	dstW := int64(len(t.xs))
	for i := range t.xs {
		x0, w := coord(int64(i), int64(srcW), dstW)
		if x0 == srcW-1 && srcW > 1 {
			// Sampling the last column exactly, as TensorFlow's clamped
			// neighbour does, is the same as sampling its left neighbour
			// with full weight on it; this way x1 == x0+1 always holds
			// for sources wider than one pixel, which rowYCbCr exploits.
			x0, w = srcW-2, wOne
		}
		x1 := min(x0+1, srcW-1)
		t.xs[i] = xEntry{
			x0: uint32(x0),
			x1: uint32(x1),
			c0: uint32((minX+x0)/hs - minX/hs),
			c1: uint32((minX+x1)/hs - minX/hs),
			w:  int32(w),
		}
	}
	t.valid, t.minX, t.srcW, t.hs = true, minX, srcW, hs
}

// coord maps output index d of n outputs onto a source of size s, returning
// the integer source index and the fraction in 1/wOne. Both callers bound
// d, s and n by maxDim, so the product cannot overflow.
func coord(d, s, n int64) (int, int) {
	p := d * s * wOne / n
	return int(p >> wBits), int(p & (wOne - 1))
}

func subsampling(r image.YCbCrSubsampleRatio) (hs, vs int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

var errEmptySource = errors.New("imageio: source image is empty")

func resize(dst []byte, src image.Image, l Layout, t *xTable, s scratch) error {
	if len(dst) != l.Len() {
		return fmt.Errorf("imageio: destination has %d bytes, layout %dx%dx%d needs %d",
			len(dst), l.Width, l.Height, l.Channels, l.Len())
	}
	if src == nil {
		return errEmptySource
	}
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	if sw <= 0 || sh <= 0 {
		return errEmptySource
	}
	if sw > maxDim || sh > maxDim {
		return fmt.Errorf("imageio: source %dx%d is too large to resize", sw, sh)
	}

	f := fetcher{src: src, sb: sb, vs: 1, chromaRow: -1}
	hs := 1
	switch m := src.(type) {
	case *image.YCbCr:
		hs, f.vs = subsampling(m.SubsampleRatio)
		f.ycc.fill()
	case *image.NYCbCrA:
		hs, f.vs = subsampling(m.SubsampleRatio)
	case *image.Paletted:
		fillPalette(&f.pal, m.Palette)
	}
	t.fill(sb.Min.X, sw, hs)
	xs := t.xs

	// When upscaling, consecutive output rows share source rows; remember
	// which rows a and b hold so that each is fetched once.
	a, b := s.a, s.b
	ay, by := -1, -1
	gray := l.Channels == 1
	rowLen := l.Width * l.Channels
	for dy := 0; dy < l.Height; dy++ {
		y0, wy := coord(int64(dy), int64(sh), int64(l.Height))
		y1 := min(y0+1, sh-1)
		if y1 == y0 {
			wy = 0
		}
		if ay != y0 {
			if by == y0 {
				a, b, ay, by = b, a, by, ay
			} else {
				f.row(a, y0, xs, s.chroma)
				ay = y0
			}
		}
		if wy != 0 && by != y1 {
			f.row(b, y1, xs, s.chroma)
			by = y1
		}
		out := dst[dy*rowLen : (dy+1)*rowLen]
		if gray {
			emitGray(out, a, b, int32(wy))
		} else {
			emitRGB(out, a, b, int32(wy))
		}
	}
	return nil
}

// fetcher produces horizontally interpolated source rows. It lives on
// resize's stack for the duration of one call. It deliberately holds no
// slices: escape analysis tracks a struct's pointers together, so slices
// stored next to src, whose At method may retain anything, would push
// Resize's stack scratch space onto the heap.
type fetcher struct {
	src image.Image
	sb  image.Rectangle
	vs  int // vertical chroma subsampling of YCbCr sources

	ycc       yccTables     // for *image.YCbCr
	chromaRow int           // offset of the chroma row the chroma terms hold
	pal       [256][3]uint8 // composited palette for *image.Paletted
}

// row writes into out, for every output column, the horizontally
// interpolated, white-composited RGB of source row ry (relative to the
// source's Bounds().Min), scaled by wOne. chroma is scratch space for
// YCbCr sources whose contents f tracks across calls.
func (f *fetcher) row(out []rgb, ry int, xs []xEntry, chroma []chromaPair) {
	out = out[:len(xs)]
	switch m := f.src.(type) {
	case *image.YCbCr:
		if f.sb.Dx() == 1 {
			// rowYCbCr needs two adjacent luma samples; a one pixel wide
			// source is too small to deserve a special case.
			rowGeneric(out, f.src, f.sb, ry, xs)
			break
		}
		y := m.Rect.Min.Y + ry
		co := (y/f.vs - m.Rect.Min.Y/f.vs) * m.CStride
		if co != f.chromaRow {
			// With vertical subsampling, the two source rows of an output
			// row usually share a chroma row; convert it once.
			chromaTerms(chroma, m.Cb[co:], m.Cr[co:], xs, &f.ycc)
			f.chromaRow = co
		}
		rowYCbCr(out, m.Y[ry*m.YStride:], chroma, xs, &f.ycc.yy)
	case *image.NYCbCrA:
		rowNYCbCrA(out, m, ry, xs, f.vs)
	case *image.RGBA:
		rowRGBA(out, m.Pix[ry*m.Stride:], xs)
	case *image.NRGBA:
		rowNRGBA(out, m.Pix[ry*m.Stride:], xs)
	case *image.Gray:
		rowGray(out, m.Pix[ry*m.Stride:], xs)
	case *image.Paletted:
		rowPaletted(out, m.Pix[ry*m.Stride:], xs, &f.pal)
	case *image.RGBA64:
		rowRGBA64(out, m.Pix[ry*m.Stride:], xs)
	case *image.NRGBA64:
		rowNRGBA64(out, m.Pix[ry*m.Stride:], xs)
	case *image.Gray16:
		rowGray16(out, m.Pix[ry*m.Stride:], xs)
	case *image.CMYK:
		rowCMYK(out, m.Pix[ry*m.Stride:], xs)
	default:
		rowGeneric(out, f.src, f.sb, ry, xs)
	}
}

// lerp3 stores the horizontal interpolation of two RGB samples, in the
// a + (b-a)*w form that needs one multiplication per channel and equals
// a*(1-w) + b*w exactly.
func lerp3(o *rgb, r0, g0, b0, r1, g1, b1, w int32) {
	o[0] = r0<<wBits + (r1-r0)*w
	o[1] = g0<<wBits + (g1-g0)*w
	o[2] = b0<<wBits + (b1-b0)*w
}

func emitRGB(out []byte, a, b []rgb, wy int32) {
	b = b[:len(a)]
	out = out[:3*len(a)]
	for i := range a {
		p, q := &a[i], &b[i]
		o := out[3*i : 3*i+3 : 3*i+3]
		o[0] = uint8(vlerp(p[0], q[0], wy))
		o[1] = uint8(vlerp(p[1], q[1], wy))
		o[2] = uint8(vlerp(p[2], q[2], wy))
	}
}

func emitGray(out []byte, a, b []rgb, wy int32) {
	b = b[:len(a)]
	out = out[:len(a)]
	for i := range a {
		p, q := &a[i], &b[i]
		out[i] = luma(vlerp(p[0], q[0], wy), vlerp(p[1], q[1], wy), vlerp(p[2], q[2], wy))
	}
}

// vlerp interpolates two horizontally interpolated values vertically and
// rounds to 8 bits. When wy is 0, q may be a stale row; multiplying its
// difference by zero is still exact.
func vlerp(p, q, wy int32) int32 {
	return (p<<wBits + (q-p)*wy + 1<<(2*wBits-1)) >> (2 * wBits)
}

// luma is BT.601 luma with weights scaled to sum to exactly 1<<16, so
// white stays 255 and grey stays grey.
func luma(r, g, b int32) uint8 {
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
}

// ycc converts like color.YCbCrToRGB, bit for bit, so that the NYCbCrA
// path agrees exactly with color.NYCbCrA.RGBA for opaque pixels.
func ycc(y, cb, cr uint8) (int32, int32, int32) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	return c8(yy + 91881*cr1), c8(yy - 22554*cb1 - 46802*cr1), c8(yy + 116130*cb1)
}

// c8 finishes color.YCbCrToRGB: v>>16 clamped to [0, 255]. Unlike the
// library's bit test, min and max compile to conditional moves, which
// matters because ringing around edges makes the clamp unpredictable.
func c8(v int32) int32 {
	return min(max(v>>16, 0), 0xff)
}

// yccTables holds color.YCbCrToRGB's luma term and chroma terms in its
// 16.16 fixed point, indexed by the raw Y, Cb or Cr byte. Built per call
// (1280 multiplications), it turns the per-sample multiplications into
// loads.
type yccTables struct {
	yy, crR, crG, cbG, cbB [256]int32
}

func (t *yccTables) fill() {
	for i := range 256 {
		c := int32(i) - 128
		t.yy[i] = int32(i) * 0x10101
		t.crR[i], t.crG[i], t.cbG[i], t.cbB[i] = 91881*c, -46802*c, -22554*c, 116130*c
	}
}

// chromaTerms stores, for every output column, the R, G and B chroma terms
// of its two samples, so that rowYCbCr reads them sequentially and two
// luma rows sharing a chroma row (the common 4:2:0 case) share the work.
func chromaTerms(dst []chromaPair, cb, cr []byte, xs []xEntry, t *yccTables) {
	dst = dst[:len(xs)]
	for i := range xs {
		e, d := &xs[i], &dst[i]
		u, v := cb[e.c0], cr[e.c0]
		d[0], d[1], d[2] = t.crR[v], t.cbG[u]+t.crG[v], t.cbB[u]
		u, v = cb[e.c1], cr[e.c1]
		d[3], d[4], d[5] = t.crR[v], t.cbG[u]+t.crG[v], t.cbB[u]
	}
}

// rowYCbCr finishes color.YCbCrToRGB for both samples of every column and
// interpolates them. Converting each sample and then interpolating, rather
// than interpolating Y'CbCr and converting once, matters at the gamut
// edge: JPEG ringing produces out-of-range colours whose clamping does not
// commute with interpolation.
func rowYCbCr(out []rgb, yr []byte, chroma []chromaPair, xs []xEntry, yy *[256]int32) {
	out, chroma = out[:len(xs)], chroma[:len(xs)]
	for i := range xs {
		e, c := &xs[i], &chroma[i]
		// x1 == x0+1 (see xTable.fill), so one bounds check covers both.
		x := uint(e.x0)
		_ = yr[x+1]
		y0, y1 := yy[yr[x]], yy[yr[x+1]]
		r0, g0, b0 := y0+c[0], y0+c[1], y0+c[2]
		r1, g1, b1 := y1+c[3], y1+c[4], y1+c[5]
		if uint32(r0|g0|b0|r1|g1|b1)&0xff000000 == 0 {
			// All in gamut, as nearly all samples of a photograph are.
			r0, g0, b0, r1, g1, b1 = r0>>16, g0>>16, b0>>16, r1>>16, g1>>16, b1>>16
		} else {
			r0, g0, b0, r1, g1, b1 = c8(r0), c8(g0), c8(b0), c8(r1), c8(g1), c8(b1)
		}
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

func rowNYCbCrA(out []rgb, m *image.NYCbCrA, ry int, xs []xEntry, vs int) {
	yr := m.Y[ry*m.YStride:]
	ar := m.A[ry*m.AStride:]
	y := m.Rect.Min.Y + ry
	co := (y/vs - m.Rect.Min.Y/vs) * m.CStride
	cb, cr := m.Cb[co:], m.Cr[co:]
	for i, e := range xs {
		r0, g0, b0 := ycca(yr[e.x0], cb[e.c0], cr[e.c0], ar[e.x0])
		r1, g1, b1 := ycca(yr[e.x1], cb[e.c1], cr[e.c1], ar[e.x1])
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

// ycca follows color.NYCbCrA.RGBA and then composites onto white.
func ycca(y, cb, cr, a uint8) (int32, int32, int32) {
	if a == 0xff {
		return ycc(y, cb, cr)
	}
	r, g, b := ycc16(y, cb, cr)
	a16 := uint32(a) * 0x101
	return over16(r*a16/0xffff, a16), over16(g*a16/0xffff, a16), over16(b*a16/0xffff, a16)
}

func ycc16(y, cb, cr uint8) (uint32, uint32, uint32) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	return clamp8(yy + 91881*cr1), clamp8(yy - 22554*cb1 - 46802*cr1), clamp8(yy + 116130*cb1)
}

// clamp8 returns v>>8 clamped to [0, 0xffff].
func clamp8(v int32) uint32 {
	if uint32(v)&0xff000000 == 0 {
		return uint32(v >> 8)
	}
	return uint32(^(v >> 31) & 0xffff)
}

// over16 composites a 16-bit alpha-premultiplied channel onto white and
// returns the high byte. Invalid premultiplied input (c > a) saturates.
func over16(c, a uint32) int32 {
	v := c + 0xffff - a
	if v > 0xffff {
		v = 0xffff
	}
	return int32(v >> 8)
}

func rowRGBA(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		q0 := p[4*e.x0 : 4*e.x0+4 : 4*e.x0+4]
		q1 := p[4*e.x1 : 4*e.x1+4 : 4*e.x1+4]
		if q0[3] == 0xff && q1[3] == 0xff {
			lerp3(&out[i], int32(q0[0]), int32(q0[1]), int32(q0[2]),
				int32(q1[0]), int32(q1[1]), int32(q1[2]), e.w)
			continue
		}
		// For 8-bit premultiplied values, c*0x101 + 0xffff - a*0x101 has
		// high byte c + 0xff - a exactly, so 8-bit arithmetic matches the
		// 16-bit definition.
		t0, t1 := 0xff-int32(q0[3]), 0xff-int32(q1[3])
		lerp3(&out[i], sat8(int32(q0[0])+t0), sat8(int32(q0[1])+t0), sat8(int32(q0[2])+t0),
			sat8(int32(q1[0])+t1), sat8(int32(q1[1])+t1), sat8(int32(q1[2])+t1), e.w)
	}
}

func sat8(v int32) int32 {
	return min(v, 0xff)
}

func rowNRGBA(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		r0, g0, b0 := nrgba(p[4*e.x0 : 4*e.x0+4 : 4*e.x0+4])
		r1, g1, b1 := nrgba(p[4*e.x1 : 4*e.x1+4 : 4*e.x1+4])
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

// nrgba follows color.NRGBA.RGBA and then composites onto white.
func nrgba(q []byte) (int32, int32, int32) {
	q = q[:4]
	switch a := q[3]; a {
	case 0xff:
		return int32(q[0]), int32(q[1]), int32(q[2])
	case 0:
		return 0xff, 0xff, 0xff
	default:
		a16 := uint32(a) * 0x101
		pm := func(c byte) int32 { return over16(uint32(c)*0x101*uint32(a)/0xff, a16) }
		return pm(q[0]), pm(q[1]), pm(q[2])
	}
}

func rowGray(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		v0, v1 := int32(p[e.x0]), int32(p[e.x1])
		v := v0<<wBits + (v1-v0)*e.w
		out[i] = rgb{v, v, v}
	}
}

func rowGray16(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		v0, v1 := int32(p[2*e.x0]), int32(p[2*e.x1])
		v := v0<<wBits + (v1-v0)*e.w
		out[i] = rgb{v, v, v}
	}
}

func rowPaletted(out []rgb, p []byte, xs []xEntry, pal *[256][3]uint8) {
	for i, e := range xs {
		c0, c1 := &pal[p[e.x0]], &pal[p[e.x1]]
		lerp3(&out[i], int32(c0[0]), int32(c0[1]), int32(c0[2]),
			int32(c1[0]), int32(c1[1]), int32(c1[2]), e.w)
	}
}

// fillPalette composites every palette entry onto white once per call.
// Indices beyond the palette, which image.Paletted.At would panic on, are
// read as opaque black, the value PNG decoders conventionally give them.
func fillPalette(dst *[256][3]uint8, p color.Palette) {
	for i := range dst {
		if i >= len(p) {
			dst[i] = [3]uint8{}
			continue
		}
		r, g, b := composite(p[i])
		dst[i] = [3]uint8{uint8(r), uint8(g), uint8(b)}
	}
}

func rowRGBA64(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		r0, g0, b0 := rgba64(p[8*e.x0 : 8*e.x0+8 : 8*e.x0+8])
		r1, g1, b1 := rgba64(p[8*e.x1 : 8*e.x1+8 : 8*e.x1+8])
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

func rgba64(q []byte) (int32, int32, int32) {
	q = q[:8]
	a := uint32(q[6])<<8 | uint32(q[7])
	if a == 0xffff {
		return int32(q[0]), int32(q[2]), int32(q[4])
	}
	return over16(uint32(q[0])<<8|uint32(q[1]), a),
		over16(uint32(q[2])<<8|uint32(q[3]), a),
		over16(uint32(q[4])<<8|uint32(q[5]), a)
}

func rowNRGBA64(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		r0, g0, b0 := nrgba64(p[8*e.x0 : 8*e.x0+8 : 8*e.x0+8])
		r1, g1, b1 := nrgba64(p[8*e.x1 : 8*e.x1+8 : 8*e.x1+8])
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

func nrgba64(q []byte) (int32, int32, int32) {
	q = q[:8]
	a := uint32(q[6])<<8 | uint32(q[7])
	if a == 0xffff {
		return int32(q[0]), int32(q[2]), int32(q[4])
	}
	pm := func(hi, lo byte) int32 { return over16((uint32(hi)<<8|uint32(lo))*a/0xffff, a) }
	return pm(q[0], q[1]), pm(q[2], q[3]), pm(q[4], q[5])
}

func rowCMYK(out []rgb, p []byte, xs []xEntry) {
	for i, e := range xs {
		r0, g0, b0 := cmyk(p[4*e.x0 : 4*e.x0+4 : 4*e.x0+4])
		r1, g1, b1 := cmyk(p[4*e.x1 : 4*e.x1+4 : 4*e.x1+4])
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

// cmyk follows color.CMYK.RGBA, keeping the high byte.
func cmyk(q []byte) (int32, int32, int32) {
	q = q[:4]
	w := 0xffff - uint32(q[3])*0x101
	c := func(v byte) int32 { return int32((0xffff - uint32(v)*0x101) * w / 0xffff >> 8) }
	return c(q[0]), c(q[1]), c(q[2])
}

func rowGeneric(out []rgb, src image.Image, sb image.Rectangle, ry int, xs []xEntry) {
	y := sb.Min.Y + ry
	for i, e := range xs {
		r0, g0, b0 := composite(src.At(sb.Min.X+int(e.x0), y))
		r1, g1, b1 := composite(src.At(sb.Min.X+int(e.x1), y))
		lerp3(&out[i], r0, g0, b0, r1, g1, b1, e.w)
	}
}

// composite returns c over white as 8-bit RGB. A nil colour, which a
// Palette may hold, counts as transparent.
func composite(c color.Color) (int32, int32, int32) {
	if c == nil {
		return 0xff, 0xff, 0xff
	}
	r, g, b, a := c.RGBA()
	return over16(r, a), over16(g, a), over16(b, a)
}
