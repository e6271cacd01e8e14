package quote_test

import (
	"testing"

	"github.com/grainline/grainline/grains/internal/scripttest"
	"github.com/grainline/grainline/grains/quote"
)

func TestScripts(t *testing.T) {
	scripttest.RunDir(t, "testdata/*.txt", quote.Behavior, quote.DecodeEvent)
}

// TestDocumentScripts runs the scripts of testdata/document with accept
// requiring the document (Options.RequireDocument).
func TestDocumentScripts(t *testing.T) {
	scripttest.RunDir(t, "testdata/document/*.txt", quote.New(quote.Options{RequireDocument: true}), quote.DecodeEvent)
}
