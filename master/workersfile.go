package master

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultWorkersFileInterval is how often a job reads its workers file
// again when JobConfig.WorkersFileInterval is 0.
const DefaultWorkersFileInterval = 2 * time.Second

// maxWorkersFileBytes bounds a workers file: a farm's addresses fit in far
// less, and a file grown by mistake must not be read into memory whole.
const maxWorkersFileBytes = 1 << 20

// ParseWorkers reads a workers file: one HOST:PORT a line, blank lines
// and what follows a '#' ignored, each address once, in order.
func ParseWorkers(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxWorkersFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > maxWorkersFileBytes {
		return nil, fmt.Errorf("more than %d bytes", maxWorkersFileBytes)
	}
	var addrs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := checkAddr(line); err != nil {
			return nil, fmt.Errorf("line %d: %q is not one HOST:PORT: %w", n, line, err)
		}
		if !slices.Contains(addrs, line) {
			addrs = append(addrs, line)
		}
	}
	return addrs, sc.Err()
}

// checkAddr refuses what gRPC would take for another target than a
// worker's HOST:PORT (a missing port means 443 to it, a '/' a scheme), so
// a typo is named at its line instead of probed forever.
func checkAddr(addr string) error {
	if strings.ContainsAny(addr, " \t,/") {
		return errors.New("one address a line, no spaces, commas or slashes")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not 1 to 65535", port)
	}
	return nil
}

// ReadWorkersFile is ParseWorkers of the file at path.
func ReadWorkersFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("workers file: %w", err)
	}
	defer f.Close()
	addrs, err := ParseWorkers(f)
	if err != nil {
		return nil, fmt.Errorf("workers file %s: %w", path, err)
	}
	return addrs, nil
}

// watchWorkers reads the workers file at path every interval until ctx
// ends and adds the workers it names to d: a farm grows without the job
// restarting. A worker taken out of the file stays in the job (it may be
// encoding a chunk); a file that cannot be read is logged and read again.
func watchWorkers(ctx context.Context, path string, interval time.Duration, d *Dispatcher, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addrs, err := ReadWorkersFile(path)
		if err != nil {
			log.Warn("cannot read the workers file again", "err", err)
			continue
		}
		if slices.Equal(addrs, last) {
			continue
		}
		last = addrs
		added, err := d.AddWorkers(addrs)
		if err != nil {
			log.Warn("workers file names a worker that cannot be dialled", "err", err)
		}
		if len(added) > 0 {
			log.Info("workers added from the workers file", "workers", added)
		}
	}
}
