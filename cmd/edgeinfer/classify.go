package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
)

func newClassifyCmd() *cobra.Command {
	var (
		opts     engineOptions
		asJSON   bool
		deviceID string
	)
	cmd := &cobra.Command{
		Use:   "classify --model DIR|FILE [flags] IMAGE...",
		Short: "Classify image files and print the top predictions",
		Long: `Classify image files with a model and print the top predictions.

With --json, each image gives one line of JSON in the result shape that the
HTTP API and MQTT also use. An image that cannot be classified gives a line
"error: IMAGE: reason" on stderr; the other images are still classified and
the exit status is 1.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, images []string) error {
			// Flags not given on the command line may come from the
			// environment (EDGEINFER_MODEL, EDGEINFER_THREADS, ...) or
			// from the daemon's variables (EDGEINFER_ENGINE_THREADS, ...).
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			xnnpack, err := cmd.Flags().GetBool("xnnpack")
			if err != nil {
				return err
			}
			opts.NoXNNPACK = !xnnpack
			// One image at a time: one interpreter, a thread per core
			// unless --threads says otherwise (engineShape).
			opts.Interpreters = 1
			if opts.Model == "" {
				return errors.New("--model (or EDGEINFER_MODEL) is required")
			}
			if deviceID == "" {
				deviceID, _ = os.Hostname()
			}
			lm, err := openModel(opts)
			if err != nil {
				return err
			}
			defer lm.Close()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if d := lm.Pool.Delegation(); d.Refused != "" {
				fmt.Fprintf(errOut, "warning: running on TensorFlow Lite's own kernels: %s\n", d)
			}
			enc := json.NewEncoder(out)
			failed := 0
			for n, path := range images {
				res, err := classifyFile(cmd, lm, path, opts.Limits)
				if err != nil {
					failed++
					fmt.Fprintf(errOut, "error: %s: %s\n", path, oneLine(err.Error()))
					continue
				}
				res.DeviceID, res.Source, res.RequestID, res.FrameID = deviceID, "file", path, uint64(n+1)
				if asJSON {
					err = enc.Encode(res)
				} else {
					err = printHuman(out, path, res)
				}
				if err != nil {
					return err
				}
			}
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Model, "model", "m", "", "model folder (with model.yaml), manifest or .tflite file")
	f.StringVar(&opts.Labels, "labels", "", "labels file, one label per line (overrides the manifest's)")
	f.IntVarP(&opts.TopK, "top", "k", 5, "number of predictions per image")
	f.Float32Var(&opts.Threshold, "threshold", 0, "leave out predictions scoring below this")
	f.IntVar(&opts.Threads, "threads", 0, "CPU threads for inference (0: one per core, at most 4)")
	f.Bool("xnnpack", true, "use the XNNPACK delegate when the TensorFlow Lite library has it")
	f.Int64Var(&opts.Limits.MaxPixels, "max-pixels", imageio.DefaultMaxPixels, "refuse images with more pixels than this")
	f.Int64Var(&opts.Limits.MaxBytes, "max-bytes", imageio.DefaultMaxBytes, "refuse image files larger than this")
	f.BoolVar(&asJSON, "json", false, "print one JSON result per line")
	f.StringVar(&deviceID, "device-id", "", "device id in results (default: the hostname)")
	return cmd
}

// daemonEnv names, for the classify flags that have a daemon setting, the
// environment variable that sets it for the daemon (config key, dots as
// underscores), so that the CLI run in the service's environment behaves
// like the service.
var daemonEnv = map[string]string{
	"threads":    "EDGEINFER_ENGINE_THREADS",
	"xnnpack":    "EDGEINFER_ENGINE_XNNPACK",
	"top":        "EDGEINFER_CLASSIFY_TOP",
	"threshold":  "EDGEINFER_CLASSIFY_THRESHOLD",
	"max-pixels": "EDGEINFER_LIMITS_MAX_PIXELS",
	"max-bytes":  "EDGEINFER_LIMITS_MAX_IMAGE_BYTES",
}

// flagsFromEnv sets each flag left off the command line from
// EDGEINFER_<FLAG> (dashes as underscores), or else from the daemon's
// variable for the same setting (daemonEnv). Values are parsed as on the
// command line: a value that does not parse is an error naming the
// variable, not a silent zero. Empty variables count as unset.
func flagsFromEnv(flags *pflag.FlagSet) error {
	var errs []error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		names := []string{"EDGEINFER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}
		if env, ok := daemonEnv[f.Name]; ok {
			names = append(names, env)
		}
		for _, env := range names {
			v := strings.TrimSpace(os.Getenv(env))
			if v == "" {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// classifyFile reads one image file within the limits and classifies it.
func classifyFile(cmd *cobra.Command, lm *loadedModel, path string, lim imageio.Limits) (edge.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return edge.Result{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return edge.Result{}, err
	}
	if fi.IsDir() {
		return edge.Result{}, errors.New("is a directory")
	}
	data, err := imageio.ReadAll(f, lim.MaxBytes)
	if err != nil {
		return edge.Result{}, err
	}
	return lm.Classifier.Classify(cmd.Context(), data)
}

func printHuman(w io.Writer, path string, res edge.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%.1f ms)\n", path, res.Timings.Total.Ms())
	for _, p := range res.Predictions {
		fmt.Fprintf(&b, "  %6.4f  %s (%d)\n", p.Score, p.Label, p.Index)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine folds a message onto one line, so that each error is one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
