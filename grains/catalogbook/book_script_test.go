package catalogbook_test

import (
	"testing"

	"github.com/grainline/grainline/grains/catalogbook"
	"github.com/grainline/grainline/grains/internal/scripttest"
)

func TestScripts(t *testing.T) {
	scripttest.RunDir(t, "testdata/*.txt", catalogbook.Behavior, catalogbook.DecodeEvent)
}
