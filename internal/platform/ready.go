package platform

import (
	"context"
	"fmt"
)

// WaitReady blocks until the platform is ready in the sense of GET
// /readyz: Start has returned, and a gateway's order-status view has
// caught up with its table (after a restart it replays the table topic
// first; on a long history that takes a while). It returns early with an
// error when ctx ends.
func (p *Platform) WaitReady(ctx context.Context) error {
	if p.orders == nil {
		return nil
	}
	if err := p.orders.WaitReady(ctx); err != nil {
		return fmt.Errorf("platform: not ready: %w", err)
	}
	return nil
}
