package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsAreContiguousAndTight(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 255, 256, 257, 383, 384, 511, 512, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, 1<<62 + 5} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the previous value's bucket %d", v, i, prev)
		}
		prev = i
		hi := bucketHigh(i)
		if hi < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d, below the value", v, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits the previous bucket (high %d)", v, bucketHigh(i-1))
		}
		if float64(hi-v) > float64(v)/subBuckets+1 {
			t.Fatalf("bucket of %d reaches %d: error above 1/%d", v, hi, subBuckets)
		}
	}
	// Every bucket boundary: the value after a bucket's high is in the next.
	for i := 0; i < 40*subBuckets; i++ {
		if got := bucketOf(bucketHigh(i) + 1); got != i+1 {
			t.Fatalf("bucketOf(bucketHigh(%d)+1) = %d, want %d", i, got, i+1)
		}
	}
}

func TestHistogramQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b Histogram
	var all []time.Duration
	for i := range 200000 {
		// Log-normal-ish latencies between 50µs and a few hundred ms.
		d := time.Duration(50_000 * (1 + rng.ExpFloat64()*rng.ExpFloat64()*20))
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	if a.Count() != uint64(len(all)) || a.Max() != all[len(all)-1] || a.Min() != all[0] {
		t.Fatalf("count %d max %v min %v, want %d %v %v", a.Count(), a.Max(), a.Min(), len(all), all[len(all)-1], all[0])
	}
	last := time.Duration(0)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999, 0.9999} {
		exact := all[int(q*float64(len(all)))-1]
		got := a.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBuckets+1 {
			t.Errorf("q%v = %v, exact %v: outside the bucket precision", q, got, exact)
		}
		if got < last {
			t.Errorf("q%v = %v below the previous quantile %v", q, got, last)
		}
		last = got
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	if mean := sum / time.Duration(len(all)); (a.Mean() - mean).Abs() > time.Microsecond {
		t.Errorf("mean %v, want %v", a.Mean(), mean)
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-5)
	h.Record(3 * time.Millisecond)
	if h.Min() != 0 || h.Max() != 3*time.Millisecond || h.Quantile(0.5) != 0 || h.Quantile(1) != 3*time.Millisecond {
		t.Fatalf("min %v max %v p50 %v", h.Min(), h.Max(), h.Quantile(0.5))
	}
}
