package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/edgeinfer/edgeinfer/tflite"
)

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Engine  string `json:"engine"`
	// XNNPACK: the TensorFlow Lite library has the XNNPACK delegate.
	XNNPACK bool `json:"xnnpack"`
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of edgeinfer and of its inference engine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{
				Version: version,
				Go:      runtime.Version(),
				OS:      runtime.GOOS,
				Arch:    runtime.GOARCH,
				Engine:  tflite.EngineName(),
				XNNPACK: tflite.XNNPACK(),
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "edgeinfer %s (%s %s/%s, engine %s)\n", v.Version, v.Go, v.OS, v.Arch, v.Engine)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
