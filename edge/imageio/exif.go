package imageio

import (
	"encoding/binary"
	"image"
	"image/draw"
)

// jpegOrientation returns the EXIF orientation (1 to 8) recorded in the
// first Exif APP1 segment of a JPEG stream, or 1 if there is none or it
// cannot be read. Only IFD0 is examined and no IFD pointer is ever
// followed, so hostile offsets can neither loop nor reach outside b.
func jpegOrientation(b []byte) int { return jpegHeaders(b).orientation }

// jpegInfo is what jpegHeaders reads from a JPEG stream's segments.
type jpegInfo struct {
	orientation int // EXIF, 1 to 8 (1 when absent or unreadable)
	// frameOK: the stream has exactly one start-of-frame segment before
	// its first scan, and image/jpeg would accept it: baseline, extended
	// or progressive Huffman coding, and a frame header passing
	// image/jpeg's checks (goFrameOK). libjpeg-turbo decodes more
	// (arithmetic coding, repeated component identifiers, 3x sampling);
	// the fast path uses it only where image/jpeg would not refuse, so the
	// images accepted do not depend on the path or the build.
	frameOK bool
	// width and height are the frame's, when frameOK (0 for a height
	// given later by a DNL marker).
	width, height int
}

// jpegHeaders walks a JPEG stream's segments up to the first scan.
func jpegHeaders(b []byte) jpegInfo {
	info := jpegInfo{orientation: 1}
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return info
	}
	exif, frames := false, 0
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return jpegInfo{orientation: info.orientation} // Lost marker sync; metadata beyond here is untrustworthy.
		}
		m := b[i+1]
		if m == 0xff {
			i++ // Fill byte before a marker.
			continue
		}
		i += 2
		switch {
		case m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7):
			continue // Markers without a length field.
		case m == 0xda || m == 0xd9:
			// Metadata must precede the first scan.
			info.frameOK = info.frameOK && frames == 1
			return info
		}
		n := int(b[i])<<8 | int(b[i+1]) // Includes the two length bytes.
		if n < 2 || n > len(b)-i {
			return jpegInfo{orientation: info.orientation}
		}
		seg := b[i+2 : i+n]
		switch {
		case m == 0xe1 && !exif && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00":
			exif = true
			info.orientation = tiffOrientation(seg[6:])
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			// 0xc4 DHT, 0xc8 JPG, 0xcc DAC are not frames.
			frames++
			info.frameOK = m <= 0xc2 && goFrameOK(seg)
			if info.frameOK { // goFrameOK checked the length
				info.height, info.width = int(seg[1])<<8|int(seg[2]), int(seg[3])<<8|int(seg[4])
			}
		}
		i += n
	}
	return jpegInfo{orientation: info.orientation}
}

// goFrameOK applies image/jpeg's checks of a frame header (processSOF in
// image/jpeg/reader.go): 8-bit precision, 1, 3 or 4 components with
// distinct identifiers, quantisation tables 0 to 3, and the sampling
// factors it supports.
func goFrameOK(seg []byte) bool {
	var nComp int
	switch len(seg) {
	case 6 + 3*1, 6 + 3*3, 6 + 3*4:
		nComp = (len(seg) - 6) / 3
	default:
		return false
	}
	if seg[0] != 8 || int(seg[5]) != nComp {
		return false
	}
	var ids, hs, vs [4]int
	for k := range nComp {
		c := seg[6+3*k:]
		ids[k] = int(c[0])
		for j := range k {
			if ids[j] == ids[k] {
				return false
			}
		}
		if c[2] > 3 {
			return false
		}
		h, v := int(c[1]>>4), int(c[1]&0x0f)
		if h < 1 || h > 4 || v < 1 || v > 4 || h == 3 || v == 3 {
			return false
		}
		hs[k], vs[k] = h, v
		switch {
		case nComp == 3 && k == 0 && v == 4,
			nComp == 3 && k == 1 && (hs[0]%h != 0 || vs[0]%v != 0),
			nComp == 3 && k == 2 && (hs[1] != h || vs[1] != v),
			nComp == 4 && k == 0 && c[1] != 0x11 && c[1] != 0x22,
			nComp == 4 && (k == 1 || k == 2) && c[1] != 0x11,
			nComp == 4 && k == 3 && (hs[0] != h || vs[0] != v):
			return false
		}
	}
	return true
}

// tiffOrientation reads tag 0x0112 from IFD0 of a TIFF structure.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	// Compare in uint64 so a 4 GB offset cannot wrap an int on 32-bit ARM.
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 1
	}
	p := int(off)
	n := int(bo.Uint16(t[p:]))
	p += 2
	if n > (len(t)-p)/12 {
		return 1 // The IFD claims more entries than the segment holds.
	}
	for k := 0; k < n; k++ {
		e := t[p+12*k : p+12*k+12]
		if bo.Uint16(e) != 0x0112 {
			continue
		}
		var v uint32
		switch typ, count := bo.Uint16(e[2:]), bo.Uint32(e[4:]); {
		case count == 0:
			return 1
		case typ == 3: // SHORT, as the specification requires.
			v = uint32(bo.Uint16(e[8:]))
		case typ == 4: // LONG, written by some non-conforming tools.
			v = bo.Uint32(e[8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// orient returns img transformed so that a picture stored with EXIF
// orientation o is upright. Orientations 5 to 8 swap width and height.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dr := image.Rect(0, 0, w, h)
	if o >= 5 {
		dr = image.Rect(0, 0, h, w)
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return orientYCbCr(m, o)
	case *image.Gray:
		d := image.NewGray(dr)
		remap(d.Pix, d.Stride, m.Pix, m.Stride, w, h, 1, o)
		return d
	case *image.CMYK:
		d := image.NewCMYK(dr)
		remap(d.Pix, d.Stride, m.Pix, m.Stride, w, h, 4, o)
		return d
	case *image.RGBA:
		d := image.NewRGBA(dr)
		remap(d.Pix, d.Stride, m.Pix, m.Stride, w, h, 4, o)
		return d
	case *image.NRGBA:
		d := image.NewNRGBA(dr)
		remap(d.Pix, d.Stride, m.Pix, m.Stride, w, h, 4, o)
		return d
	}
	// image/jpeg returns only the types above; keep a correct, if slow,
	// answer for anything else.
	tmp := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(tmp, tmp.Rect, img, b.Min, draw.Src)
	return orient(tmp, o)
}

// orientYCbCr transforms the three planes directly, which keeps the result
// a YCbCr (and thus on Resize's fast path) at half the memory of RGBA.
// That is only exact when the chroma grid divides the image evenly;
// otherwise, or when a transpose would need a subsampling ratio that does
// not exist (4:1:1, 4:1:0), chroma is first expanded to 4:4:4.
func orientYCbCr(m *image.YCbCr, o int) image.Image {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	hs, vs := subsampling(m.SubsampleRatio)
	ratio, ok := m.SubsampleRatio, true
	if o >= 5 {
		ratio, ok = transposedRatio(m.SubsampleRatio)
	}
	if !ok || m.Rect.Min != (image.Point{}) || w%hs != 0 || h%vs != 0 {
		m, ratio, hs, vs = toYCbCr444(m), image.YCbCrSubsampleRatio444, 1, 1
	}
	dr := image.Rect(0, 0, w, h)
	if o >= 5 {
		dr = image.Rect(0, 0, h, w)
	}
	d := image.NewYCbCr(dr, ratio)
	remap(d.Y, d.YStride, m.Y, m.YStride, w, h, 1, o)
	remap(d.Cb, d.CStride, m.Cb, m.CStride, w/hs, h/vs, 1, o)
	remap(d.Cr, d.CStride, m.Cr, m.CStride, w/hs, h/vs, 1, o)
	return d
}

func transposedRatio(r image.YCbCrSubsampleRatio) (image.YCbCrSubsampleRatio, bool) {
	switch r {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
		return r, true
	case image.YCbCrSubsampleRatio422:
		return image.YCbCrSubsampleRatio440, true
	case image.YCbCrSubsampleRatio440:
		return image.YCbCrSubsampleRatio422, true
	}
	return r, false
}

// toYCbCr444 returns a copy of m with full-resolution chroma at origin 0,0,
// sampling chroma exactly as m.At does.
func toYCbCr444(m *image.YCbCr) *image.YCbCr {
	b := m.Rect
	d := image.NewYCbCr(image.Rect(0, 0, b.Dx(), b.Dy()), image.YCbCrSubsampleRatio444)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		di := (y - b.Min.Y) * d.YStride
		for x := b.Min.X; x < b.Max.X; x++ {
			ci := m.COffset(x, y)
			d.Y[di] = m.Y[m.YOffset(x, y)]
			d.Cb[di] = m.Cb[ci]
			d.Cr[di] = m.Cr[ci]
			di++
		}
	}
	return d
}

// remap writes into dst the w x h plane src (bpp bytes per pixel) as seen
// upright under EXIF orientation o. dst must be h x w for o >= 5.
//
// Every destination pixel (x, y) reads source byte base + x*sx + y*sy,
// which turns all eight orientations into one loop. The loop walks 64x64
// tiles because for the transposing orientations - 6 is what most phones
// write - a row-at-a-time walk would read the source a column at a time
// and miss the cache on every pixel.
func remap(dst []byte, dstStride int, src []byte, srcStride, w, h, bpp, o int) {
	if w <= 0 || h <= 0 {
		return
	}
	lastX, lastY := (w-1)*bpp, (h-1)*srcStride
	var base, sx, sy int
	switch o {
	case 1:
		base, sx, sy = 0, bpp, srcStride
	case 2:
		base, sx, sy = lastX, -bpp, srcStride
	case 3:
		base, sx, sy = lastX+lastY, -bpp, -srcStride
	case 4:
		base, sx, sy = lastY, bpp, -srcStride
	case 5:
		base, sx, sy = 0, srcStride, bpp
	case 6:
		base, sx, sy = lastY, -srcStride, bpp
	case 7:
		base, sx, sy = lastX+lastY, -srcStride, -bpp
	case 8:
		base, sx, sy = lastX, srcStride, -bpp
	default:
		return
	}
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	const tile = 64
	for ty := 0; ty < dh; ty += tile {
		yEnd := min(ty+tile, dh)
		for tx := 0; tx < dw; tx += tile {
			xEnd := min(tx+tile, dw)
			for y := ty; y < yEnd; y++ {
				s := base + y*sy + tx*sx
				row := dst[y*dstStride+tx*bpp : y*dstStride+xEnd*bpp]
				if bpp == 1 {
					for i := range row {
						row[i] = src[s]
						s += sx
					}
					continue
				}
				for i := 0; i < len(row); i += bpp {
					copy(row[i:i+bpp], src[s:s+bpp])
					s += sx
				}
			}
		}
	}
}
