package order_test

import (
	"testing"

	"github.com/grainline/grainline/grains/internal/scripttest"
	"github.com/grainline/grainline/grains/order"
)

func TestScripts(t *testing.T) {
	scripttest.RunDir(t, "testdata/*.txt", order.Behavior, order.DecodeEvent)
}
