# edgeinfer: `make run` builds, fetches the models and runs the main job;
# `make test` runs every test. See README.md.

ARCH    ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/edgeinfer
PKGS    := ./...
GODIRS   = $(wildcard cmd edge tflite mqtt systemd scripts)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s

# How to link TensorFlow Lite: the system's library, else the fast engine
# (XNNPACK, built from Debian's sources by scripts/tflite-xnnpack.sh and
# cached in ~/.cache/edgeinfer), else Debian sid's prebuilt library in a
# private sysroot. scripts/tflite-env.sh decides and caches its answer;
# EDGEINFER_TFLITE=system|xnnpack|prebuilt forces one.
TFLITE_MK := .deps/tflite-$(ARCH).mk
-include $(TFLITE_MK)
$(TFLITE_MK): scripts/tflite-env.sh scripts/tflite-sysroot.sh scripts/tflite-xnnpack.sh
	@mkdir -p $(@D)
	scripts/tflite-env.sh $(ARCH) > $@.tmp && mv $@.tmp $@

# The prebuilt library as well, for make bench's engine comparison.
PREBUILT_MK := .deps/tflite-prebuilt-$(ARCH).mk
$(PREBUILT_MK): scripts/tflite-env.sh scripts/tflite-sysroot.sh
	@mkdir -p $(@D)
	EDGEINFER_TFLITE=prebuilt scripts/tflite-env.sh $(ARCH) > $@.raw
	sed 's/^TFLITE_/PREBUILT_/' $@.raw > $@.tmp && rm $@.raw && mv $@.tmp $@

GOENV = $(TFLITE_ENV)

.PHONY: all build engine models run test test-short test-purego asan fuzz bench lint vet clean sysroot

all: build

sysroot: $(TFLITE_MK)
	@echo "TensorFlow Lite: $(TFLITE_KIND)"

# Build (or find) the fast engine and link against it from now on.
engine:
	scripts/tflite-xnnpack.sh $(ARCH) >/dev/null
	rm -f $(TFLITE_MK)
	$(MAKE) sysroot

build: $(TFLITE_MK)
	@mkdir -p bin
	@echo "edgeinfer: linking TensorFlow Lite: $(TFLITE_KIND)"
	$(GOENV) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/edgeinfer

models:
	$(GO) run ./scripts/fetchmodels models

# The main job: the daemon on a demo configuration (scripts/demo.yaml): a
# replay source over the sample images, the status page on 127.0.0.1:8080,
# the embedded MQTT broker on 127.0.0.1:1883.
run: build models
	@echo "edgeinfer: status page  http://127.0.0.1:8080/"
	@echo "edgeinfer: classify     curl -F image=@models/mobilenet-v1-quant/samples/peacock.png http://127.0.0.1:8080/api/v1/classify"
	@echo "edgeinfer: MQTT         mosquitto_sub -h 127.0.0.1 -t 'edgeinfer/#' -v"
	@echo "edgeinfer:              mosquitto_pub -h 127.0.0.1 -t edgeinfer/demo/classify/req-1 -f models/mobilenet-v1-quant/samples/peacock.png"
	$(BIN) run --config scripts/demo.yaml

vet: $(TFLITE_MK)
	$(GOENV) $(GO) vet $(PKGS)

# staticcheck is pinned as a tool in go.mod; the binary is built without
# cgo (it only reads code), then run with the cgo environment so that it
# can type-check the tflite package.
STATICCHECK := .deps/staticcheck
$(STATICCHECK): go.mod
	@mkdir -p $(@D)
	CGO_ENABLED=0 GOFLAGS= $(GO) build -o $@ honnef.co/go/tools/cmd/staticcheck

lint: vet $(STATICCHECK)
	@test -z "$$(gofmt -l $(GODIRS))" || { gofmt -l $(GODIRS); exit 1; }
	$(GOENV) $(STATICCHECK) $(PKGS)

# Everything: unit and integration tests with the race detector, on the
# real TensorFlow Lite library and the real models; then the packages with
# C code under AddressSanitizer.
test: build models lint
	$(GOENV) EDGEINFER_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(ASAN_TEST)
	$(PUREGO_TEST)

# Everything but tflite and the command builds and passes without cgo (the
# JPEG decoder falls back to Go's): DESIGN.md's promise, kept by running it.
PUREGO_PKGS := ./edge/... ./mqtt/... ./systemd/...
PUREGO_TEST = CGO_ENABLED=0 GOFLAGS= $(GO) test -short -count=1 $(PUREGO_PKGS)
test-purego: models
	$(PUREGO_TEST)

# The cgo packages and their callers under AddressSanitizer (our C code is
# instrumented, the libraries are not) and LeakSanitizer: a C allocation
# left unfreed fails the run. scripts/lsan.supp lists the libraries' own.
ASAN_PKGS := ./tflite/ ./edge/jpegturbo/ ./edge/imageio/ ./edge/classify/
ASAN_ENV := LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp
ASAN_TEST = $(GOENV) $(ASAN_ENV) $(GO) test -asan -count=1 $(ASAN_PKGS)
asan: $(TFLITE_MK) models
	$(ASAN_TEST)

test-short: build models
	$(GOENV) EDGEINFER_BIN=$(CURDIR)/$(BIN) $(GO) test -short -count=1 $(PKGS)

# Each fuzz target for FUZZTIME (default 30s); the ones that reach C code
# (libjpeg-turbo, TensorFlow Lite's model verifier) under AddressSanitizer.
fuzz: build models
	$(GOENV) $(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./edge/imageio/
	$(GOENV) $(ASAN_ENV) $(GO) test -asan -run='^$$' -fuzz='^FuzzDecodeScaled$$' -fuzztime=$(FUZZTIME) ./edge/jpegturbo/
	$(GOENV) $(ASAN_ENV) $(GO) test -asan -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) ./tflite/

# Speed and memory figures, in one run. With the fast engine, the bench is
# also built against the prebuilt library to compare the two.
bench: build models
	$(GOENV) $(GO) build -o bin/bench ./scripts/bench
	CGO_ENABLED=0 GOFLAGS= $(GO) build -o bin/rusage ./cmd/edgeinfer/testdata/rusage
	@if [ "$(word 1,$(TFLITE_KIND))" = xnnpack ]; then \
		$(MAKE) -s $(PREBUILT_MK) || exit 1; \
		( eval "$$(sed -n 's/^PREBUILT_ENV := /export /p' $(PREBUILT_MK))" && $(GO) build -o bin/bench-prebuilt ./scripts/bench ) || exit 1; \
		prebuilt=-prebuilt=$(CURDIR)/bin/bench-prebuilt; \
	fi; \
	EDGEINFER_BIN=$(CURDIR)/$(BIN) bin/bench $$prebuilt

clean:
	rm -rf bin .deps/*.mk
