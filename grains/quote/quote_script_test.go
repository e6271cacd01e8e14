package quote_test

import (
	"testing"

	"github.com/grainline/grainline/grains/internal/scripttest"
	"github.com/grainline/grainline/grains/quote"
)

func TestScripts(t *testing.T) {
	scripttest.RunDir(t, "testdata/*.txt", quote.Behavior, quote.DecodeEvent)
}
