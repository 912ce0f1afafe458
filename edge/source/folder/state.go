package folder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The state file is a text file of one record per line,
//
//	<size> <mtime-unix-nanoseconds> <quoted file name>
//
// appended and fsynced once per file done, so that a power cut loses at
// most the record being written. Later records for a name override
// earlier ones. Lines that do not parse (a record torn by a power cut)
// are skipped; the rewrite at start drops them.

// stamp identifies one version of a file: a file replaced by another of
// the same name almost always differs in size or modification time.
type stamp struct {
	size  int64
	mtime int64 // UnixNano
}

func stampOf(fi fs.FileInfo) stamp {
	return stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

func formatRecord(name string, st stamp) string {
	return fmt.Sprintf("%d %d %s\n", st.size, st.mtime, strconv.Quote(name))
}

func parseRecord(line string) (string, stamp, bool) {
	size, rest, ok1 := strings.Cut(line, " ")
	mtime, quoted, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return "", stamp{}, false
	}
	var st stamp
	var err1, err2, err3 error
	st.size, err1 = strconv.ParseInt(size, 10, 64)
	st.mtime, err2 = strconv.ParseInt(mtime, 10, 64)
	name, err3 := strconv.Unquote(quoted)
	if err1 != nil || err2 != nil || err3 != nil || name == "" {
		return "", stamp{}, false
	}
	return name, st, true
}

// readState returns the records of the state file at path (none if it does
// not exist) and how many lines were skipped as unreadable.
func readState(path string) (map[string]stamp, int, error) {
	done := make(map[string]stamp)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return done, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	skipped := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1) // no line limit: the whole file is in memory anyway
	for sc.Scan() {
		if name, st, ok := parseRecord(sc.Text()); ok {
			done[name] = st
		} else {
			skipped++
		}
	}
	return done, skipped, sc.Err()
}

// writeState replaces the state file at path with the records of done,
// atomically: a crash leaves either the old or the new file.
func writeState(path string, done map[string]stamp) (err error) {
	var buf bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(done)) {
		buf.WriteString(formatRecord(name, done[name]))
	}
	dir := filepath.Dir(path)
	// The leading dot and the .tmp suffix keep a folder source watching
	// dir from taking the temporary file for an image.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(buf.Bytes()); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// appendState appends one record to the state file at path and syncs it.
// The file is opened per record rather than held open so that a state
// file removed with its directory is recreated when the directory is back.
func appendState(path, name string, st stamp) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(formatRecord(name, st))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDir makes a rename in dir durable. It is best effort: not every
// file system (or OS) can sync a directory, and the rename itself has
// already succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
