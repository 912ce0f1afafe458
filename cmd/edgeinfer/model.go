package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgeinfer/edgeinfer/edge/model"
	"github.com/edgeinfer/edgeinfer/tflite"
)

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Work with model files"}
	cmd.AddCommand(newInspectCmd())
	return cmd
}

// inspectReport is what `model inspect` prints.
type inspectReport struct {
	Name string `json:"name,omitempty"`
	Path string `json:"path"`
	tflite.Info
	Labels int `json:"labels,omitempty"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [--json] MODEL",
		Short: "Show a model's inputs, outputs, quantisation and task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			man, err := model.Load(args[0])
			if err != nil {
				return err
			}
			m, err := tflite.LoadFile(man.ModelPath(), 0)
			if err != nil {
				return err
			}
			defer m.Close()
			info, err := m.Inspect()
			if err != nil {
				return err
			}
			rep := inspectReport{Name: man.Name, Path: man.ModelPath(), Info: info}
			if p := man.LabelsPath(); p != "" {
				if labels, err := model.ReadLabels(p); err == nil {
					rep.Labels = len(labels)
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printInspect(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInspect(w io.Writer, r inspectReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model    %s\npath     %s\nsha256   %s\nsize     %d bytes\ntask     %s\n", r.Name, r.Path, r.SHA256, r.SizeBytes, r.Task)
	if r.NeedsEdgeTPU {
		b.WriteString("edgetpu  required (compiled for the Coral Edge TPU)\n")
	}
	if r.Labels > 0 {
		fmt.Fprintf(&b, "labels   %d\n", r.Labels)
	}
	for _, g := range []struct {
		name string
		ts   []tflite.TensorInfo
	}{{"input", r.Inputs}, {"output", r.Outputs}} {
		for i, t := range g.ts {
			fmt.Fprintf(&b, "%-6s %d  %-8s %-16s %s", g.name, i, t.Type, fmt.Sprint(t.Shape), t.Name)
			if q := t.Quantization; q != nil {
				fmt.Fprintf(&b, "  scale=%g zero_point=%d", q.Scale, q.ZeroPoint)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
