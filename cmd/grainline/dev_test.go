package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var devReadyLine = regexp.MustCompile(`^grainline dev ready: http://(\S+) \(OpenAPI at /openapi.yaml\), NATS nats://\S+, embedded store in (\S+); token: grainline token --data-dir (\S+) --tenant demo --roles sales,approver$`)

// The ready line of `grainline dev` tells a newcomer to go ahead: when it
// is printed, /readyz answers 200 (the order-status view has caught up),
// on a first start and on a restart with history.
func TestDevReadyLineMeansReady(t *testing.T) {
	dir := t.TempDir()
	for _, start := range []string{"first", "restart"} {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"dev", "--data-dir", dir, "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0"}, pw, io.Discard)
			pw.Close()
		}()
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var line string
		select {
		case line = <-lines:
		case code := <-done:
			t.Fatalf("%s start: dev exited with %d before its ready line", start, code)
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s start: no ready line in 2m", start)
		}
		m := devReadyLine.FindStringSubmatch(line)
		if m == nil || m[2] != dir || m[3] != dir {
			t.Fatalf("%s start: ready line %q", start, line)
		}
		for _, path := range []string{"/livez", "/readyz"} {
			resp, err := http.Get("http://" + m[1] + path)
			if err != nil {
				t.Fatalf("%s start: GET %s: %v", start, path, err)
			}
			var b strings.Builder
			io.Copy(&b, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s start: GET %s right after the ready line = %d %s", start, path, resp.StatusCode, b.String())
			}
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("%s start: dev exited with %d after the signal", start, code)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s start: dev did not stop within a minute", start)
		}
		for range lines {
		}
	}
}
