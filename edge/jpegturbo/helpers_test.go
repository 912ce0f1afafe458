//go:build cgo

package jpegturbo

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// photo returns a smooth gradient with noise, which compresses and decodes
// roughly like a real photograph.
func photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	clamp := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			n := func() float64 { return rng.NormFloat64() * 6 }
			m.SetRGBA(x, y, color.RGBA{
				clamp(40 + 180*fx + 20*math.Sin(fy*9) + n()),
				clamp(60 + 150*fy + 25*math.Cos(fx*7) + n()),
				clamp(200 - 120*fx*fy + n()),
				255,
			})
		}
	}
	return m
}

func encodeJPEG(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goDecode decodes data with image/jpeg, converted to RGBA.
func goDecode(t testing.TB, data []byte) *image.RGBA {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out := image.NewRGBA(image.Rect(0, 0, m.Bounds().Dx(), m.Bounds().Dy()))
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

// boxDown averages f x f blocks of m (edge blocks partly outside m average
// what is inside), the ideal that DCT-domain scaling by 1/f approximates.
func boxDown(m *image.RGBA, f int) *image.RGBA {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewRGBA(image.Rect(0, 0, (w+f-1)/f, (h+f-1)/f))
	for oy := 0; oy < out.Rect.Dy(); oy++ {
		for ox := 0; ox < out.Rect.Dx(); ox++ {
			var sum [4]int
			n := 0
			for y := oy * f; y < min(oy*f+f, h); y++ {
				for x := ox * f; x < min(ox*f+f, w); x++ {
					for c := range sum {
						sum[c] += int(m.Pix[y*m.Stride+4*x+c])
					}
					n++
				}
			}
			for c := range sum {
				out.Pix[oy*out.Stride+4*ox+c] = uint8((sum[c] + n/2) / n)
			}
		}
	}
	return out
}

// diff returns the mean and maximum absolute difference of the RGB
// channels of two images of the same size.
func diff(t testing.TB, a, b *image.RGBA) (mean float64, maxd int) {
	t.Helper()
	if a.Rect.Size() != b.Rect.Size() {
		t.Fatalf("sizes differ: %v and %v", a.Rect.Size(), b.Rect.Size())
	}
	var sum, n int
	for y := 0; y < a.Rect.Dy(); y++ {
		for x := 0; x < a.Rect.Dx(); x++ {
			for c := range 3 {
				d := int(a.Pix[y*a.Stride+4*x+c]) - int(b.Pix[y*b.Stride+4*x+c])
				if d < 0 {
					d = -d
				}
				sum += d
				n++
				maxd = max(maxd, d)
			}
		}
	}
	return float64(sum) / float64(n), maxd
}

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}
