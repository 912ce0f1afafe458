package tflite

/*
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tensorflow/lite/c/c_api.h>

// ei_errlog collects TensorFlow Lite's error messages for one model or
// interpreter. It lives in C memory so the reporter below never calls into
// Go: go-tflite's own reporter passes a va_list to asprintf, which is
// undefined behaviour (DESIGN.md, pitfalls).
typedef struct {
	char msg[2048];
	size_t len;
} ei_errlog;

static void ei_report(void *user_data, const char *format, va_list args) {
	ei_errlog *log = user_data;
	size_t cap = sizeof(log->msg);
	if (log->len + 2 >= cap) {
		return;
	}
	if (log->len > 0) {
		log->msg[log->len++] = '\n';
	}
	int n = vsnprintf(log->msg + log->len, cap - log->len, format, args);
	if (n < 0) {
		log->msg[log->len] = 0;
		return;
	}
	log->len += (size_t)n;
	if (log->len >= cap) {
		log->len = cap - 1;
	}
	log->msg[log->len] = 0;
}

static ei_errlog *ei_errlog_new(void) { return calloc(1, sizeof(ei_errlog)); }

static void ei_errlog_reset(ei_errlog *log) {
	log->len = 0;
	log->msg[0] = 0;
}

static TfLiteModel *ei_model_create(const void *data, size_t size, ei_errlog *log) {
	return TfLiteModelCreateWithErrorReporter(data, size, ei_report, log);
}

static void ei_options_set_reporter(TfLiteInterpreterOptions *o, ei_errlog *log) {
	TfLiteInterpreterOptionsSetErrorReporter(o, ei_report, log);
}
*/
import "C"

import (
	"strings"
	"unsafe"

	gotflite "github.com/mattn/go-tflite"
)

// errLog is TensorFlow Lite's error output for one model or interpreter.
type errLog struct{ c *C.ei_errlog }

func newErrLog() errLog { return errLog{c: C.ei_errlog_new()} }

// take returns what was reported since the last call, as one line.
func (l errLog) take() string {
	if l.c == nil {
		return ""
	}
	msg := C.GoString(&l.c.msg[0])
	C.ei_errlog_reset(l.c)
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "See instructions: https://www.tensorflow.org/lite/guide/ops_custom", "")), " ")
	return msg
}

func (l errLog) free() {
	if l.c != nil {
		C.free(unsafe.Pointer(l.c))
	}
}

// The two helpers below let models and options we create (with an error
// reporter go-tflite cannot set safely) be used through go-tflite's types.
// go-tflite v1.0.1 declares both types as a struct holding one C pointer;
// the size assertions here fail to compile if that ever changes, and
// TestGoTFLiteInterop checks the round trip.
var (
	_ [unsafe.Sizeof(gotflite.Model{}) - unsafe.Sizeof(uintptr(0))]struct{}
	_ [unsafe.Sizeof(uintptr(0)) - unsafe.Sizeof(gotflite.Model{})]struct{}
	_ [unsafe.Sizeof(gotflite.InterpreterOptions{}) - unsafe.Sizeof(uintptr(0))]struct{}
	_ [unsafe.Sizeof(uintptr(0)) - unsafe.Sizeof(gotflite.InterpreterOptions{})]struct{}
)

func wrapModel(p *C.TfLiteModel) *gotflite.Model {
	return (*gotflite.Model)(unsafe.Pointer(&struct{ p *C.TfLiteModel }{p}))
}

func optionsPtr(o *gotflite.InterpreterOptions) *C.TfLiteInterpreterOptions {
	return (*struct{ p *C.TfLiteInterpreterOptions })(unsafe.Pointer(o)).p
}

// createModel hands a C copy of data to TensorFlow Lite, which verifies the
// flatbuffer. The copy must outlive the model.
func createModel(data []byte, log errLog) (*C.TfLiteModel, unsafe.Pointer) {
	buf := C.CBytes(data)
	m := C.ei_model_create(buf, C.size_t(len(data)), log.c)
	if m == nil {
		C.free(buf)
		return nil, nil
	}
	return m, buf
}

func deleteModel(m *C.TfLiteModel, buf unsafe.Pointer) {
	C.TfLiteModelDelete(m)
	C.free(buf)
}

func setReporter(o *gotflite.InterpreterOptions, log errLog) {
	C.ei_options_set_reporter(optionsPtr(o), log.c)
}
