// Command edgeinfer classifies images with TensorFlow Lite models: once
// from the command line (classify), or as a daemon (run, in a later
// release). This package only wires the parts together; the logic lives in
// edge/..., tflite and mqtt.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=...).
var version = "dev"

func main() { os.Exit(run()) }

// exitError carries a process exit status chosen by a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(os.Stderr, "error: %v\n", oneLine(err.Error()))
		return 1
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "edgeinfer",
		Short:         "TensorFlow Lite inference for edge boards",
		Long:          "edgeinfer classifies images with TensorFlow Lite models and reports what it saw as JSON.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newClassifyCmd(), newModelCmd(), newConfigCmd(), newVersionCmd())
	return root
}
