package tflite

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
	pthread_cond_t cond; // signals both ways: a run asked for, a run ended
	pthread_t thread;
	TfLiteInterpreter *it;
	int efd;
	uint64_t started;  // runs asked for
	uint64_t finished; // runs ended; equal to started when idle
	int quit;
	TfLiteStatus status; // of the last run
} ei_invoker;

static void *ei_invoker_main(void *arg) {
	ei_invoker *v = arg;
	pthread_mutex_lock(&v->mu);
	for (;;) {
		while (v->finished == v->started && !v->quit) {
			pthread_cond_wait(&v->cond, &v->mu);
		}
		if (v->quit) {
			break;
		}
		pthread_mutex_unlock(&v->mu);
		TfLiteStatus s = TfLiteInterpreterInvoke(v->it);
		pthread_mutex_lock(&v->mu);
		v->status = s;
		v->finished = v->started;
		pthread_cond_broadcast(&v->cond);
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
	// The thread starts with every signal blocked, so that the process's
	// signals go to Go's threads and not through Go's slower path for
	// signals that land on foreign threads.
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int e = pthread_create(&v->thread, NULL, ei_invoker_main, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		pthread_cond_destroy(&v->cond);
		pthread_mutex_destroy(&v->mu);
		close(v->efd);
		free(v);
		errno = e;
		return NULL;
	}
	// Named here rather than by the thread itself, so that the name is
	// there when the invoker is handed out. Threads TensorFlow Lite starts
	// from it (its own kernels' workers) inherit the name.
	pthread_setname_np(v->thread, "tflite-invoke");
	return v;
}

static void ei_invoker_start(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	v->started++;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
}

// ei_invoker_finished reports whether the last run asked for has ended,
// and its status.
static int ei_invoker_finished(ei_invoker *v, TfLiteStatus *status) {
	pthread_mutex_lock(&v->mu);
	int done = v->finished == v->started;
	*status = v->status;
	pthread_mutex_unlock(&v->mu);
	return done;
}

// ei_invoker_wait blocks until the last run asked for has ended, then
// empties the eventfd; the fallback when the eventfd cannot be read.
static TfLiteStatus ei_invoker_wait(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	while (v->finished != v->started) {
		pthread_cond_wait(&v->cond, &v->mu);
	}
	TfLiteStatus s = v->status;
	uint64_t n;
	while (read(v->efd, &n, sizeof n) < 0 && errno == EINTR) {
	}
	pthread_mutex_unlock(&v->mu);
	return s;
}

// ei_invoker_free stops the thread (after the run in progress, if any)
// and frees everything but the eventfd, which Go owns and closes.
static void ei_invoker_free(ei_invoker *v) {
	pthread_mutex_lock(&v->mu);
	v->quit = 1;
	pthread_cond_broadcast(&v->cond);
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
	"syscall"
	"time"
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
	// poller and Read parks the goroutine instead of an OS thread. If the
	// poller will not take it (no deadline support tells), reads block
	// the thread instead, like a cgo call.
	done := os.NewFile(uintptr(c.efd), "tflite-invoke")
	if done.SetReadDeadline(time.Time{}) != nil {
		if err := syscall.SetNonblock(int(c.efd), false); err != nil {
			C.ei_invoker_free(c)
			done.Close()
			return nil, fmt.Errorf("tflite: inference thread: %w", err)
		}
	}
	return &invoker{c: c, done: done}, nil
}

// invoke runs the interpreter once and returns when the run has ended
// (never before: the caller may reuse the tensors at once).
func (v *invoker) invoke() gotflite.Status {
	C.ei_invoker_start(v.c)
	var (
		b      [8]byte
		status C.TfLiteStatus
	)
	// One eventfd write per run, and each read takes the count: a read
	// returns when this run has ended. Should one fail (it cannot, short
	// of a closed descriptor), wait in C instead.
	if _, err := v.done.Read(b[:]); err == nil && C.ei_invoker_finished(v.c, &status) == 1 {
		return gotflite.Status(status)
	}
	return gotflite.Status(C.ei_invoker_wait(v.c))
}

// free waits for a run in progress, stops the thread and closes the
// eventfd. The interpreter must be deleted after it. Not concurrently
// with invoke (Pool and Interpreter's contract).
func (v *invoker) free() {
	if v == nil {
		return
	}
	C.ei_invoker_free(v.c)
	v.done.Close()
}
