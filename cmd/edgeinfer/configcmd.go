package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgeinfer/edgeinfer/edge/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file: unknown keys, wrong types, missing or bad values",
		Long: `Check a configuration file the way the daemon reads it (environment
overrides included). Each problem is printed on its own line, prefixed with
its key path; the exit status is 1 if there is any.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], nil)
			if err == nil {
				err = cfg.Validate()
			}
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", strings.TrimPrefix(line, "config: "))
				}
				return exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	})
	return cmd
}
