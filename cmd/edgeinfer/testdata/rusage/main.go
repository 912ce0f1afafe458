// Command rusage runs a command and writes "maxrss_kb exit_code signaled"
// to a file. Tests start edgeinfer through it because a child's ru_maxrss
// includes the RSS of the process that started it (vfork+exec): seen from
// a 200 MB `go test -race` process, every child would look 200 MB big.
// This helper is small, so the figure it reports is edgeinfer's own.
//
//	rusage OUTFILE COMMAND [ARG...]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rusage OUTFILE COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(2)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	out := fmt.Sprintf("%d %d %t\n", ru.Maxrss, ws.ExitStatus(), ws.Signaled())
	if err := os.WriteFile(os.Args[1], []byte(out), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(2)
	}
}
