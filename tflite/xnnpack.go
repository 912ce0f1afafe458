package tflite

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <tensorflow/lite/c/c_api.h>
#include <tensorflow/lite/c/common.h>

// The XNNPACK delegate's header ships only with a TensorFlow Lite built
// with it (scripts/tflite-xnnpack.sh installs it into its sysroot); the
// library's functions are looked up at run time, so one binary runs on a
// library with or without XNNPACK and says which it found.
#if __has_include(<tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h>)
#include <tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h>
#define EI_XNNPACK_HEADER 1

typedef struct TfLiteXNNPackDelegateWeightsCache ei_wcache;
typedef ei_wcache *(*ei_wc_create_fn)(void);
typedef bool (*ei_wc_finalize_fn)(ei_wcache *);
typedef void (*ei_wc_delete_fn)(ei_wcache *);
static ei_wc_create_fn ei_wc_create;
static ei_wc_finalize_fn ei_wc_finalize;
static ei_wc_delete_fn ei_wc_delete;

typedef TfLiteXNNPackDelegateOptions (*ei_xnn_defaults_fn)(void);
typedef TfLiteDelegate *(*ei_xnn_create_fn)(const TfLiteXNNPackDelegateOptions *);
typedef void (*ei_xnn_delete_fn)(TfLiteDelegate *);

static ei_xnn_defaults_fn ei_xnn_defaults;
static ei_xnn_create_fn ei_xnn_create;
static ei_xnn_delete_fn ei_xnn_delete;
#endif

// ei_xnnpack_init resolves the delegate's entry points in the loaded
// TensorFlow Lite library: 1 when all are there.
static int ei_xnnpack_init(void) {
#ifdef EI_XNNPACK_HEADER
	ei_xnn_defaults = (ei_xnn_defaults_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateOptionsDefault");
	ei_xnn_create = (ei_xnn_create_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateCreate");
	ei_xnn_delete = (ei_xnn_delete_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateDelete");
	ei_wc_create = (ei_wc_create_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateWeightsCacheCreate");
	ei_wc_finalize = (ei_wc_finalize_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateWeightsCacheFinalizeHard");
	ei_wc_delete = (ei_wc_delete_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateWeightsCacheDelete");
	return ei_xnn_defaults && ei_xnn_create && ei_xnn_delete;
#else
	return 0;
#endif
}

// ei_weights_* handle a weights cache shared by a pool's delegates, as
// void* so that Go code compiles without the XNNPACK header too.
static void *ei_weights_new(void) {
#ifdef EI_XNNPACK_HEADER
	return (ei_wc_create && ei_wc_finalize && ei_wc_delete) ? ei_wc_create() : NULL;
#else
	return NULL;
#endif
}

static int ei_weights_finalize(void *wc) {
#ifdef EI_XNNPACK_HEADER
	return ei_wc_finalize((ei_wcache *)wc) ? 1 : 0;
#else
	return 0;
#endif
}

static void ei_weights_delete(void *wc) {
#ifdef EI_XNNPACK_HEADER
	ei_wc_delete((ei_wcache *)wc);
#endif
}

// ei_xnnpack_create makes a delegate running threads threads with the
// quantised (uint8 and int8) kernels enabled, packing its weights into wc
// when it is not NULL.
static TfLiteDelegate *ei_xnnpack_create(int threads, void *wc) {
#ifdef EI_XNNPACK_HEADER
	TfLiteXNNPackDelegateOptions o = ei_xnn_defaults();
	o.num_threads = threads;
	o.weights_cache = (ei_wcache *)wc;
	o.flags |= TFLITE_XNNPACK_DELEGATE_FLAG_QS8 | TFLITE_XNNPACK_DELEGATE_FLAG_QU8;
	return ei_xnn_create(&o);
#else
	return NULL;
#endif
}

static void ei_xnnpack_delete(TfLiteDelegate *d) {
#ifdef EI_XNNPACK_HEADER
	ei_xnn_delete(d);
#endif
}

// ei_census is filled by a delegate that changes nothing: applied after
// XNNPACK, its Prepare sees the final execution plan and counts the nodes
// other delegates took (each delegate node's builtin_data is its
// TfLiteDelegateParams, common.h) and those left to the CPU kernels.
typedef struct {
	TfLiteDelegate d;
	int seen;
	int delegated;
	int cpu;
} ei_census;

static TfLiteStatus ei_census_prepare(TfLiteContext *ctx, TfLiteDelegate *d) {
	ei_census *c = (ei_census *)d->data_;
	TfLiteIntArray *plan = NULL;
	if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk || plan == NULL) {
		return kTfLiteOk;
	}
	c->seen = 1;
	c->delegated = 0;
	c->cpu = 0;
	for (int i = 0; i < plan->size; i++) {
		TfLiteNode *node = NULL;
		TfLiteRegistration *reg = NULL;
		if (ctx->GetNodeAndRegistration(ctx, plan->data[i], &node, &reg) != kTfLiteOk || node == NULL) {
			continue;
		}
		if (node->delegate == NULL) {
			c->cpu++;
			continue;
		}
		const TfLiteDelegateParams *p = (const TfLiteDelegateParams *)node->builtin_data;
		if (p != NULL && p->nodes_to_replace != NULL) {
			c->delegated += p->nodes_to_replace->size;
		}
	}
	return kTfLiteOk;
}

static ei_census *ei_census_new(void) {
	ei_census *c = calloc(1, sizeof(ei_census));
	if (c == NULL) {
		return NULL;
	}
	c->d.data_ = c;
	c->d.Prepare = ei_census_prepare;
	c->d.flags = kTfLiteDelegateFlagsAllowDynamicTensors;
	return c;
}

// ei_quiet_logger raises the minimum severity of TensorFlow Lite's
// logger, which writes straight to stderr, to warnings: the XNNPACK
// delegate logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
// for every interpreter. tflite::LoggerOptions::SetMinimumLogSeverity
// (tensorflow/lite/logger.h) is C++; it is looked up by its mangled name
// and skipped if absent.
static void ei_quiet_logger(void) {
	typedef int (*set_fn)(int);
	set_fn set = (set_fn)dlsym(RTLD_DEFAULT, "_ZN6tflite13LoggerOptions21SetMinimumLogSeverityENS_11LogSeverityE");
	if (set != NULL) {
		set(2); // TFLITE_LOG_WARNING
	}
}

static void ei_options_add_delegates(TfLiteInterpreterOptions *o, TfLiteDelegate *xnn, ei_census *c) {
	TfLiteInterpreterOptionsAddDelegate(o, xnn);
	TfLiteInterpreterOptionsAddDelegate(o, &c->d);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	gotflite "github.com/mattn/go-tflite"
)

// xnnpackFound resolves the delegate's entry points once per process: the
// answer depends only on the library the process loaded.
var xnnpackFound = sync.OnceValue(func() bool {
	C.ei_quiet_logger()
	return C.ei_xnnpack_init() == 1
})

// XNNPACK reports whether the loaded TensorFlow Lite library has the
// XNNPACK delegate (and this binary was built with its header).
func XNNPACK() bool { return xnnpackFound() }

// EngineName names the inference engine for version output and status:
// "tensorflow-lite 2.14.1 +xnnpack" when the delegate is available.
func EngineName() string {
	name := "tensorflow-lite " + Version()
	if XNNPACK() {
		name += " +xnnpack"
	}
	return name
}

// Delegation says which delegate runs a model's nodes.
type Delegation struct {
	// Delegate is "xnnpack", or "cpu" when TensorFlow Lite's own kernels
	// run everything.
	Delegate string `json:"delegate"`
	// Nodes is the number of the model's nodes the delegate took, of
	// Total.
	Nodes int `json:"nodes"`
	Total int `json:"total"`
	// Refused is TensorFlow Lite's reason when the XNNPACK delegate failed
	// on the model and the interpreter fell back to its own kernels.
	Refused string `json:"refused,omitempty"`
}

// String reads "xnnpack (29 of 31 nodes)", "cpu", or "cpu (xnnpack
// refused the model: reason)".
func (d Delegation) String() string {
	if d.Delegate == "" || d.Delegate == "cpu" {
		if d.Refused != "" {
			return "cpu (xnnpack refused the model: " + d.Refused + ")"
		}
		return "cpu"
	}
	return fmt.Sprintf("%s (%d of %d nodes)", d.Delegate, d.Nodes, d.Total)
}

// delegates are the C objects one interpreter uses; they must be deleted
// after it.
type delegates struct {
	xnn    *C.TfLiteDelegate
	census *C.ei_census
}

// addXNNPACK creates the XNNPACK delegate (and the census that counts what
// it took) and adds both to the options.
func addXNNPACK(o *gotflite.InterpreterOptions, threads int, weights unsafe.Pointer) (delegates, error) {
	xnn := C.ei_xnnpack_create(C.int(threads), weights)
	if xnn == nil {
		return delegates{}, fmt.Errorf("tflite: cannot create the XNNPACK delegate")
	}
	census := C.ei_census_new()
	if census == nil {
		C.ei_xnnpack_delete(xnn)
		return delegates{}, fmt.Errorf("tflite: out of memory")
	}
	C.ei_options_add_delegates(optionsPtr(o), xnn, census)
	return delegates{xnn: xnn, census: census}, nil
}

// delegation reads the census after the interpreter was created.
func (d delegates) delegation() Delegation {
	if d.xnn == nil || d.census == nil || d.census.seen == 0 {
		return Delegation{Delegate: "cpu"}
	}
	n, cpu := int(d.census.delegated), int(d.census.cpu)
	return Delegation{Delegate: "xnnpack", Nodes: n, Total: n + cpu}
}

// free deletes the delegates; call only after the interpreter is deleted.
func (d *delegates) free() {
	if d.xnn != nil {
		C.ei_xnnpack_delete(d.xnn)
		d.xnn = nil
	}
	if d.census != nil {
		C.free(unsafe.Pointer(d.census))
		d.census = nil
	}
}

// weightsCache holds XNNPACK's packed weights once for all interpreters of
// a pool instead of once per interpreter: 12 MB less for mobilenet with 4
// interpreters (daemon VmHWM 64 against 76 MB), the same speed. It is
// filled while the interpreters are created, frozen (finalized) before the
// first Invoke, and deleted after the last interpreter. A zero value (no
// XNNPACK, or a library without the cache functions) means no cache.
type weightsCache struct{ c unsafe.Pointer }

func newWeightsCache() weightsCache {
	if !XNNPACK() {
		return weightsCache{}
	}
	return weightsCache{c: C.ei_weights_new()}
}

func (w weightsCache) finalize() error {
	if w.c != nil && C.ei_weights_finalize(w.c) != 1 {
		return fmt.Errorf("tflite: cannot finalize the XNNPACK weights cache")
	}
	return nil
}

func (w *weightsCache) free() {
	if w.c != nil {
		C.ei_weights_delete(w.c)
		w.c = nil
	}
}
