// Command fetchmodels fills each folder under models/ with the files its
// model.yaml names, taken from the Go module the manifest's source names
// (so only the Go module proxy is contacted), and checks their sha256.
// Files already present with the right hash are left alone.
//
//	go run ./scripts/fetchmodels [models-dir]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/edgeinfer/edgeinfer/edge/model"
)

func main() {
	dir := "models"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := fetchAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "fetchmodels:", err)
		os.Exit(1)
	}
}

func fetchAll(dir string) error {
	manifests, err := filepath.Glob(filepath.Join(dir, "*", model.ManifestName))
	if err != nil {
		return err
	}
	if len(manifests) == 0 {
		return fmt.Errorf("no %s under %s", model.ManifestName, dir)
	}
	modules := map[string]string{} // module@version -> folder
	var errs []error
	for _, path := range manifests {
		if err := fetch(path, modules); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

func fetch(path string, modules map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m, err := model.Parse(data)
	if err != nil {
		return err
	}
	folder := filepath.Dir(path)
	files := []struct{ dst, src, sum string }{{m.File, m.Source.File, m.SHA256}}
	if m.Labels != "" && m.Source.Labels != "" {
		files = append(files, struct{ dst, src, sum string }{m.Labels, m.Source.Labels, m.LabelsSHA})
	}
	for _, smp := range m.Samples {
		files = append(files, struct{ dst, src, sum string }{smp.File, smp.Source, ""})
	}
	for _, f := range files {
		dst := filepath.Join(folder, f.dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if got, err := model.FileSHA256(dst); err == nil && (f.sum == "" || got == f.sum) {
			continue
		}
		if m.Source.Module == "" || f.src == "" {
			return fmt.Errorf("%s missing and the manifest names no source", f.dst)
		}
		modDir, err := moduleDir(m.Source.Module, modules)
		if err != nil {
			return err
		}
		if err := copyChecked(filepath.Join(modDir, f.src), dst, f.sum); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "fetchmodels: %s <- %s/%s\n", dst, m.Source.Module, f.src)
	}
	return nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its folder.
func moduleDir(mod string, cache map[string]string) (string, error) {
	if d, ok := cache[mod]; ok {
		return d, nil
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s", mod, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	cache[mod] = info.Dir
	return info.Dir, nil
}

// copyChecked copies src to dst through a temporary file, renamed into
// place only when its sha256 matches want.
func copyChecked(src, dst, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if want != "" {
		got, err := model.FileSHA256(tmp.Name())
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: %w: sha256 %s, manifest says %s", src, model.ErrChecksum, got, want)
		}
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
