package truthtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// BenchCommit commits b.N batches of size new aggregates, each commit with
// two events, an audit record and an idempotency record, and reports
// commits/s.
func BenchCommit(b *testing.B, s truth.Store, size int) {
	ctx := context.Background()
	batch := make([]truth.Commit, size)
	run := time.Now().UnixNano() // b.N grows over several runs on one store
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range batch {
			k := truth.Key{Tenant: "bench", Kind: "quote", ID: fmt.Sprintf("b%d-%d-%d", run, i, j)}
			batch[j] = NewCommit(k, 0, k.ID)
		}
		b.StartTimer()
		res, err := s.Commit(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range res {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "commits/s")
}
