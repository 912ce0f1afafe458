package tflite

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <tensorflow/lite/c/c_api.h>

// ei_invoker runs TfLiteInterpreterInvoke on a thread of its own (named
// tflite-invoke) and reports each end through an eventfd, so that the Go
// side waits in the network poller instead of in a cgo call. Inference
// calls of 10 ms and more keep Go's sysmon thread waking every few
// microseconds to take the caller's P back, and on a fully busy machine
// each wake-up preempts inference: measured with two interpreters on two
// cores, sysmon used 8 % of a core and caused 3,500 preemptions a second;
// with this thread, 3 % and a third as many context switches. The
// hand-over costs about 0.1 ms per call.
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	TfLiteInterpreter *it;
	int efd;
	int pending; // a run was asked for and has not started
	int quit;
	TfLiteStatus status; // of the last run
} ei_invoker;

static void *ei_invoker_main(void *arg) {
	ei_invoker *v = arg;
	pthread_mutex_lock(&v->mu);
	for (;;) {
		while (!v->pending && !v->quit) {
			pthread_cond_wait(&v->cond, &v->mu);
		}
		if (v->quit) {
			break;
		}
		v->pending = 0;
		pthread_mutex_unlock(&v->mu);
		TfLiteStatus s = TfLiteInterpreterInvoke(v->it);
		pthread_mutex_lock(&v->mu);
		v->status = s;
		uint64_t one = 1;
		while (write(v->efd, &one, sizeof one) < 0 && errno == EINTR) {
		}
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

// ei_invoker_new returns NULL with errno set when a resource is missing.
static ei_invoker *ei_invoker_new(TfLiteInterpreter *it) {
	ei_invoker *v = calloc(1, sizeof *v);
	if (v == NULL) {
		return NULL;
	}
	v->it = it;
	v->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->efd < 0) {
		int e = errno;
		free(v);
		errno = e;
		return NULL;
	}
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cond, NULL);
	int e = pthread_create(&v->thread, NULL, ei_invoker_main, v);
	if (e != 0) {
		pthread_cond_destroy(&v->cond);
		pthread_mutex_destroy(&v->mu);
		close(v->efd);
		free(v);
		errno = e;
		return NULL;
	}
	// Named here rather than by the thread itself, so that the name is
	// there when the invoker is handed out.
	pthread_setname_np(v->thread, "tflite-invoke");
	return v;
}

static void ei_invoker_start(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	v->pending = 1;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->mu);
}

static TfLiteStatus ei_invoker_status(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	TfLiteStatus s = v->status;
	pthread_mutex_unlock(&v->mu);
	return s;
}

// ei_invoker_free stops the thread (after the run in progress, if any)
// and frees everything but the eventfd, which Go owns and closes.
static void ei_invoker_free(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	v->quit = 1;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->mu);
	pthread_join(v->thread, NULL);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->mu);
	free(v);
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	gotflite "github.com/mattn/go-tflite"
)

// go-tflite v1.0.1 declares Interpreter as a struct holding one C pointer
// (see cgo.go for the same check on Model and InterpreterOptions).
var (
	_ [unsafe.Sizeof(gotflite.Interpreter{}) - unsafe.Sizeof(uintptr(0))]struct{}
	_ [unsafe.Sizeof(uintptr(0)) - unsafe.Sizeof(gotflite.Interpreter{})]struct{}
)

func interpreterPtr(it *gotflite.Interpreter) *C.TfLiteInterpreter {
	return (*struct{ p *C.TfLiteInterpreter })(unsafe.Pointer(it)).p
}

// invoker runs one interpreter's Invoke on a C thread of its own; the
// caller waits for the end in Go's network poller (see ei_invoker). One
// caller at a time, like the interpreter.
type invoker struct {
	c    *C.ei_invoker
	done *os.File // the eventfd the thread signals after each run
}

func newInvoker(it *gotflite.Interpreter) (*invoker, error) {
	c, err := C.ei_invoker_new(interpreterPtr(it))
	if c == nil {
		return nil, fmt.Errorf("tflite: starting the inference thread: %w", err)
	}
	// The eventfd is non-blocking, so os.NewFile registers it with the
	// poller and Read parks the goroutine instead of an OS thread.
	return &invoker{c: c, done: os.NewFile(uintptr(c.efd), "tflite-invoke")}, nil
}

// invoke runs the interpreter once and waits for the end.
func (v *invoker) invoke() (gotflite.Status, error) {
	C.ei_invoker_start(v.c)
	var b [8]byte
	if _, err := v.done.Read(b[:]); err != nil {
		// Only a closed or broken eventfd; the run may still be going on,
		// and free waits for it.
		return gotflite.Error, fmt.Errorf("tflite: waiting for Invoke: %w", err)
	}
	return gotflite.Status(C.ei_invoker_status(v.c)), nil
}

// free waits for a run in progress, stops the thread and closes the
// eventfd. The interpreter must be deleted after it.
func (v *invoker) free() {
	if v == nil {
		return
	}
	C.ei_invoker_free(v.c)
	v.done.Close()
}
