package bench

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress writes the live progress line: redrawn in place on a terminal,
// one line per update otherwise. A nil writer discards everything.
type progress struct {
	w        io.Writer
	label    string
	terminal bool
	drawn    bool
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(phase string, elapsed time.Duration, ok, failed uint64, rate float64) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf("[%s] %-7s %6.1fs  %9d commands  %9.0f cmd/s  %d errors",
		p.label, phase, elapsed.Seconds(), ok, rate, failed)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// done ends an in-place line so that later output starts on a fresh line.
func (p *progress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
