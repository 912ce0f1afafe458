package tflite

import (
	"fmt"
	"math"

	gotflite "github.com/mattn/go-tflite"
)

// Normalization maps an 8-bit pixel p to the real value (p-Mean)/Std the
// model was trained on. The zero value means "not given": quantised inputs
// then take pixels as TensorFlow Lite's reference tools feed them (raw for
// uint8, p-128 for int8), and float inputs get p/255.
type Normalization struct {
	Mean, Std float64
}

// pixelLUT converts all 256 pixel values once, so filling a tensor is a
// table lookup per value.
type pixelLUT struct {
	q [256]byte    // uint8 or int8 (as its bit pattern)
	f [256]float32 // float32
	// identity: q maps every byte to itself (raw pixels into a uint8
	// input, the common case), so filling is a copy.
	identity bool
}

func newPixelLUT(typ gotflite.TensorType, qp gotflite.QuantizationParams, norm Normalization) (pixelLUT, error) {
	var lut pixelLUT
	given := norm.Std != 0
	for p := 0; p < 256; p++ {
		switch typ {
		case gotflite.Float32:
			if given {
				lut.f[p] = float32((float64(p) - norm.Mean) / norm.Std)
			} else {
				lut.f[p] = float32(p) / 255
			}
		case gotflite.UInt8:
			v := p
			if given && qp.Scale != 0 {
				v = quantize((float64(p)-norm.Mean)/norm.Std, qp, 0, 255)
			}
			lut.q[p] = byte(v)
		case gotflite.Int8:
			v := p - 128
			if given && qp.Scale != 0 {
				v = quantize((float64(p)-norm.Mean)/norm.Std, qp, -128, 127)
			}
			lut.q[p] = byte(int8(v))
		default:
			return lut, fmt.Errorf("tflite: %w: input type %s (want uint8, int8 or float32)", ErrInput, typ)
		}
	}
	lut.identity = typ == gotflite.UInt8
	for p := 0; p < 256 && lut.identity; p++ {
		lut.identity = lut.q[p] == byte(p)
	}
	return lut, nil
}

// quantize returns round(r/scale + zero_point) clamped to [lo, hi].
func quantize(r float64, qp gotflite.QuantizationParams, lo, hi int) int {
	v := int(math.Round(r/qp.Scale)) + qp.ZeroPoint
	return min(max(v, lo), hi)
}

func dequantizeUint8(dst []float32, src []uint8, qp gotflite.QuantizationParams) {
	s, z := float32(qp.Scale), int32(qp.ZeroPoint)
	for k, q := range src {
		dst[k] = s * float32(int32(q)-z)
	}
}

func dequantizeInt8(dst []float32, src []int8, qp gotflite.QuantizationParams) {
	s, z := float32(qp.Scale), int32(qp.ZeroPoint)
	for k, q := range src {
		dst[k] = s * float32(int32(q)-z)
	}
}
