package e2e

import (
	"io"
	"log"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Goka reports consumer-group generations through the standard logger;
	// keep the test output to the tests' own lines unless logs are asked for.
	if os.Getenv("GRAINLINE_E2E_LOG") == "" {
		log.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}
